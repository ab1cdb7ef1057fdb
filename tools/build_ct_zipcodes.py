"""Build the Connecticut ZIP-code and town tables in ``seed_data/``.

Run once, offline, whenever the tables should be refreshed; the app reads only the
CSV files this writes and needs no network or extra package at run time.

Sources
    1. The town list, the town boundaries and the ZIP-to-town crosswalk: the CTData
       Collaborative's "Connecticut Zip to Town Crosswalk" (GitHub repository
       CT-Data-Collaborative/ct-zip-to-town, commit eb8292a417f541c6fd0caacd8d97a82afc5797c1,
       MIT licence). Files read from a checkout of it:

       * ``raw/town2county.csv``: the 169 towns with their county and Census FIPS code;
       * ``raw/towns.geojson``: the towns' boundaries (from the State of Connecticut's
         Town Boundary Index Map), in longitude/latitude;
       * ``data/2020zip-to-town.csv``: each 2020 Census ZIP Code Tabulation Area (ZCTA)
         assigned to the town its centroid falls in (289 ZCTAs; Union and Lisbon get none).

    2. Every CT ZIP code with its USPS city, type, county and point: the PyPI package
       ``zipcodes`` 3.0.0 (https://github.com/seanpianka/zipcodes, MIT licence), whose
       wheel embeds its dataset; its README names the data's sources: unitedstateszipcodes.org
       (city, ZIP type, county, acceptable city names), GeoNames (latitude/longitude, CC BY
       4.0) and USPS ZIP Locale Detail (active ZIPs).

Which towns a ZIP serves (``towns``)
    * the crosswalk's town, for a ZIP that is a ZCTA (the town its area's centroid is in);
    * the town whose boundary holds the ZIP's point (``zipcodes``' latitude/longitude;
      for a PO BOX or UNIQUE ZIP, which has no area, the only way);
    * every town the USPS accepts as another city name of the ZIP (``zipcodes``'
      ``acceptable_cities``): 06351 (Jewett City) serves Griswold and Lisbon, 06076
      (Stafford Springs) serves Stafford and Union.
    The ZIP's primary USPS city is used only for a ZIP neither of the first two places
    (06497, Stratford, whose point lies offshore), and not otherwise: 06018, the post office named
    "Canaan", lies in North Canaan (the town of Canaan is 06031). A ZIP whose area crosses a
    town line may miss a town it reaches: these tables are a crosswalk, not a boundary file.

Output
    ct_zipcodes.csv  zip,city,towns,county,latitude,longitude,zip_type
        Every ZIP whose state is CT, sorted by zip. ``city`` is the USPS city name
        ("Vernon Rockville"); ``towns`` the municipalities it serves, ``;``-separated
        ("Vernon"); ``zip_type`` is STANDARD, PO BOX or UNIQUE; the point is the data's.
        Rows without coordinates are dropped and counted on stderr.
    ct_towns.csv     town,county,fips,latitude,longitude,zips
        The 169 towns, sorted, each at the centroid of its boundary (4 decimals), with
        every ZIP that serves it (``;``-separated).

Usage (from the repository root, with ``zipcodes`` installed in some throwaway venv, not
in the app's, and the crosswalk repository checked out at CTDATA)::

    python tools/build_ct_zipcodes.py CTDATA seed_data/ct_zipcodes.csv seed_data/ct_towns.csv

A summary goes to stderr.
"""

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import zipcodes

STATE = "CT"
ZIP_COLUMNS = ["zip", "city", "towns", "county", "latitude", "longitude", "zip_type"]
TOWN_COLUMNS = ["town", "county", "fips", "latitude", "longitude", "zips"]


def ring_area_centroid(ring):
    """Signed area and centroid of one closed ring (planar, in degrees)."""
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        cross = x1 * y2 - x2 * y1
        area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    area /= 2
    return area, (cx / (6 * area), cy / (6 * area)) if area else ring[0]


def polygons(geometry):
    coords = geometry["coordinates"]
    return coords if geometry["type"] == "MultiPolygon" else [coords]


def centroid(geometry):
    """Area-weighted centroid of a (multi)polygon, holes subtracted: (longitude, latitude)."""
    total = sx = sy = 0.0
    for polygon in polygons(geometry):
        for index, ring in enumerate(polygon):
            area, (x, y) = ring_area_centroid([tuple(p[:2]) for p in ring])
            area = abs(area) if index == 0 else -abs(area)
            total += area
            sx += x * area
            sy += y * area
    return sx / total, sy / total


def inside(geometry, lon, lat):
    """Whether the point lies in the (multi)polygon (even-odd rule over all its rings)."""
    for polygon in polygons(geometry):
        hit = False
        for ring in polygon:
            for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
                if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                    hit = not hit
        if hit:
            return True
    return False


def read_ctdata(root: Path):
    with (root / "raw" / "town2county.csv").open(newline="", encoding="utf-8-sig") as handle:
        towns = {
            row["town"]: {"county": row["county"] + " County", "fips": row["fips"]} for row in csv.DictReader(handle)
        }
    shapes = {
        f["properties"]["town"]: f["geometry"]
        for f in json.loads((root / "raw" / "towns.geojson").read_text())["features"]
    }
    with (root / "data" / "2020zip-to-town.csv").open(newline="", encoding="utf-8-sig") as handle:
        crosswalk = {row["2020zip5"].zfill(5): row["Town_Name"] for row in csv.DictReader(handle)}
    assert set(towns) == set(shapes) and set(crosswalk.values()) <= set(towns), "the crosswalk's town names disagree"
    return towns, shapes, crosswalk


def build(root: Path):
    towns, shapes, crosswalk = read_ctdata(root)
    zip_rows, dropped, unplaced = [], 0, []
    for record in zipcodes.filter_by(state=STATE):
        lat, lon = (record.get("lat") or "").strip(), (record.get("long") or "").strip()
        if not lat or not lon:
            dropped += 1
            continue
        code = record["zip_code"]
        served = {crosswalk[code]} if code in crosswalk else set()
        point_town = {t for t, shape in shapes.items() if inside(shape, float(lon), float(lat))}
        served |= point_town
        if not served:  # neither a ZCTA nor a point on land (06497): its USPS city, when a town
            unplaced.append(code)
            served.update(t for t in towns if t.lower() == record["city"].lower())
        for name in record.get("acceptable_cities") or []:
            served.update(t for t in towns if t.lower() == name.lower())
        zip_rows.append(
            {
                "zip": code,
                "city": record["city"],
                "towns": ";".join(sorted(served)),
                "county": record["county"],
                "latitude": lat,
                "longitude": lon,
                "zip_type": record["zip_code_type"],
            }
        )
    zip_rows.sort(key=lambda row: row["zip"])
    zips_of = defaultdict(list)
    for row in zip_rows:
        for town in filter(None, row["towns"].split(";")):
            zips_of[town].append(row["zip"])
    town_rows = []
    for town in sorted(towns):
        lon, lat = centroid(shapes[town])
        town_rows.append(
            {
                "town": town,
                **towns[town],
                "latitude": f"{lat:.4f}",
                "longitude": f"{lon:.4f}",
                "zips": ";".join(zips_of[town]),
            }
        )
    return zip_rows, town_rows, dropped, unplaced


def write_csv(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ctdata", type=Path, help="a checkout of CT-Data-Collaborative/ct-zip-to-town")
    parser.add_argument("zips_out", help="ZIP table path")
    parser.add_argument("towns_out", help="town table path")
    args = parser.parse_args(argv)
    zip_rows, town_rows, dropped, unplaced = build(args.ctdata)
    write_csv(args.zips_out, ZIP_COLUMNS, zip_rows)
    write_csv(args.towns_out, TOWN_COLUMNS, town_rows)
    without = [row["town"] for row in town_rows if not row["zips"]]
    print(
        f"zipcodes {zipcodes.__version__}: {len(zip_rows)} {STATE} ZIPs written ({dropped} dropped without "
        f"coordinates; placed by USPS city alone: {' '.join(unplaced) or '-'}); {len(town_rows)} towns written"
        f" ({len(without)} without a ZIP: {', '.join(without) or '-'})",
        file=sys.stderr,
    )
    return 1 if without or len(town_rows) != 169 else 0


if __name__ == "__main__":
    sys.exit(main())
