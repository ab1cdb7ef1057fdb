"""Connecticut ZIP codes and towns, and distances on the earth's surface.

The tables in `seed_data/` (built once from a public source, see seed_data/README.md) are read
from disk on first use; nothing is fetched from the network.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_data"
EARTH_RADIUS_M = 6371008.8
STATE = "CT"


@dataclass(frozen=True)
class Place:
    name: str
    latitude: float
    longitude: float
    towns: tuple[str, ...] = ()  # a ZIP code's: the towns (municipalities) it serves


@lru_cache(maxsize=1)
def zip_codes() -> dict[str, Place]:
    with (SEED_DIR / "ct_zipcodes.csv").open(newline="", encoding="utf-8") as handle:
        return {
            row["zip"]: Place(
                row["city"],
                float(row["latitude"]),
                float(row["longitude"]),
                tuple(filter(None, row["towns"].split(";"))),
            )
            for row in csv.DictReader(handle)
        }


@lru_cache(maxsize=1)
def towns() -> dict[str, Place]:
    """The 169 towns (municipalities) at their centroids, keyed by lower-case town name."""
    with (SEED_DIR / "ct_towns.csv").open(newline="", encoding="utf-8") as handle:
        return {
            row["town"].lower(): Place(row["town"], float(row["latitude"]), float(row["longitude"]))
            for row in csv.DictReader(handle)
        }


def zip_place(postcode: str) -> Place | None:
    """The centroid and town of a Connecticut ZIP code (`06106` or `06106-1234`)."""
    return zip_codes().get((postcode or "").strip()[:5])


def zip_towns(postcode: str) -> tuple[str, ...]:
    """The Connecticut towns a ZIP code serves (none for a ZIP outside the state's table)."""
    place = zip_place(postcode)
    return place.towns if place else ()


def town_place(town: str) -> Place | None:
    return towns().get((town or "").strip().lower())


def distance_m(lat1: float | None, lon1: float | None, lat2: float | None, lon2: float | None) -> float | None:
    """Great-circle distance in metres (haversine); None (SQL NULL) when a coordinate is missing."""
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing the circle; a cheap index pre-filter."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(math.cos(math.radians(lat)), 1e-6)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon
