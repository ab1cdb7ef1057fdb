"""Build the Connecticut ZIP-code and town tables in ``seed_data/``.

Run once, offline, whenever the tables should be refreshed; the app reads only the
CSV files this writes and needs no network or extra package at run time.

Source
    The PyPI package ``zipcodes`` (https://github.com/seanpianka/zipcodes; the tables
    in this repository were built with version 3.0.0). Its wheel embeds the whole US
    dataset, so nothing is downloaded. The package's README names where that dataset
    comes from:

    * unitedstateszipcodes.org - base records: primary city, ZIP type, county;
    * GeoNames (US.zip postal-code export) - the latitude/longitude, licensed
      CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/): credit "GeoNames";
    * USPS ZIP Locale Detail - the list of active delivery ZIPs (public domain).

Licence
    The package is MIT-licensed. The coordinates are GeoNames data under CC BY 4.0,
    which asks for attribution (see seed_data/README.md). The package does not state
    a licence for the unitedstateszipcodes.org base records.

Output
    ct_zipcodes.csv  zip,town,county,latitude,longitude,zip_type
        Every ZIP whose state is CT, sorted by zip. ``town`` is the primary (USPS)
        city name as the data spells it ("Hartford", "West Hartford"); it is a postal
        place name, which is not always one of the 169 municipalities ("Vernon
        Rockville", "Storrs Mansfield"). ``zip_type`` is the data's own type
        (STANDARD, PO BOX or UNIQUE). Coordinates are copied as the data gives them.
        Rows without coordinates are dropped and counted on stderr.
    ct_towns.csv     town,latitude,longitude
        Each distinct town of the table above, sorted, at the mean of its STANDARD
        ZIP centroids (of all its ZIPs if it has no STANDARD one), to 4 decimals.

Usage (from the repository root, with ``zipcodes`` installed in some throwaway venv,
not in the app's)::

    python tools/build_ct_zipcodes.py > seed_data/ct_zipcodes.csv
    python tools/build_ct_zipcodes.py seed_data/ct_zipcodes.csv seed_data/ct_towns.csv

The first argument is the ZIP table's path (``-`` or nothing: stdout); the optional
second is the town table's path. A summary goes to stderr.
"""

import argparse
import contextlib
import csv
import sys
from collections import defaultdict

import zipcodes

STATE = "CT"
ZIP_COLUMNS = ["zip", "town", "county", "latitude", "longitude", "zip_type"]
TOWN_COLUMNS = ["town", "latitude", "longitude"]


def ct_zip_rows():
    """The state's ZIP rows, sorted by zip, and how many were dropped for lacking coordinates."""
    rows, dropped = [], 0
    for record in zipcodes.filter_by(state=STATE):
        lat, lon = (record.get("lat") or "").strip(), (record.get("long") or "").strip()
        if not lat or not lon:
            dropped += 1
            continue
        rows.append({
            "zip": record["zip_code"],
            "town": record["city"],
            "county": record["county"],
            "latitude": lat,
            "longitude": lon,
            "zip_type": record["zip_code_type"],
        })
    rows.sort(key=lambda row: row["zip"])
    return rows, dropped


def town_rows(zip_rows):
    """One row per town at the mean of its STANDARD ZIP centroids (all its ZIPs if none is STANDARD)."""
    by_town = defaultdict(list)
    for row in zip_rows:
        by_town[row["town"]].append(row)
    towns = []
    for town in sorted(by_town):
        rows = by_town[town]
        used = [row for row in rows if row["zip_type"] == "STANDARD"] or rows
        towns.append({
            "town": town,
            "latitude": f"{sum(float(r['latitude']) for r in used) / len(used):.4f}",
            "longitude": f"{sum(float(r['longitude']) for r in used) / len(used):.4f}",
        })
    return towns


def write_csv(path, columns, rows):
    with contextlib.ExitStack() as stack:
        out = sys.stdout if path in (None, "-") else stack.enter_context(
            open(path, "w", newline="", encoding="utf-8"))
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zips_out", nargs="?", default="-", help="ZIP table path (default: stdout)")
    parser.add_argument("towns_out", nargs="?", help="town table path (default: not written)")
    args = parser.parse_args(argv)

    zip_rows, dropped = ct_zip_rows()
    write_csv(args.zips_out, ZIP_COLUMNS, zip_rows)
    summary = (f"zipcodes {zipcodes.__version__}: {len(zip_rows)} {STATE} ZIPs written, "
               f"{dropped} dropped without coordinates")
    if args.towns_out:
        towns = town_rows(zip_rows)
        write_csv(args.towns_out, TOWN_COLUMNS, towns)
        summary += f"; {len(towns)} towns written"
    print(summary, file=sys.stderr)


if __name__ == "__main__":
    main()
