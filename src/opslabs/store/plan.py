"""Which labs a verify run runs: only those whose content changed (`--changed`), and one
deterministic, duration-balanced share of them (`--shard K/N`). Plain functions of the
stored results, taken as one snapshot at the start of the run."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

Record = Mapping[str, Any]


def needs_run(key: str, record: Record | None) -> bool:
    """A lab runs unless the store holds a passing result for exactly this content key."""
    return not (record and record.get("status") == "passed" and record.get("key") == key)


def changed(keys: Mapping[str, str], results: Mapping[str, Record]) -> list[str]:
    """The lab ids (in the given order) whose current key has no passing result."""
    return [lab for lab, key in keys.items() if needs_run(key, results.get(lab))]


def parse_shard(text: str) -> tuple[int, int]:
    """`2/4` -> (2, 4): the second of four shares, counted from 1."""
    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text)
    if not match:
        raise ValueError(f"expected K/N, for example 2/4, not {text!r}")
    k, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"expected 1 <= K <= N, not {k}/{n}")
    return k, n


def durations(lab_ids: Iterable[str], results: Mapping[str, Record],
              steps: Mapping[str, int] | None = None) -> dict[str, float]:
    """Recorded seconds per lab. A lab never recorded gets the median of the others (1 s when
    none is) or, given `steps`, its step count times the median seconds per step of the recorded
    labs (1 s per step when none is): with no history at all, more steps counts as longer."""
    lab_ids = list(lab_ids)
    known = {}
    for lab in lab_ids:
        try:
            seconds = float(results.get(lab, {}).get("duration"))
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            known[lab] = seconds
    count = {lab: max((steps or {}).get(lab, 1), 1) for lab in lab_ids}  # without `steps`, each lab is one step
    per_step = [known[lab] / count[lab] for lab in known]
    each = statistics.median(per_step) if per_step else 1.0
    return {lab: known[lab] if lab in known else each * count[lab] for lab in lab_ids}


def shards(seconds: Mapping[str, float], n: int) -> list[list[str]]:
    """Greedy longest-first into n bins: each lab goes to the bin with the least time so far
    (the lowest-numbered on a tie). Sorted by (-seconds, id), so the same input gives the same
    bins on every machine, whatever order the labs were listed in."""
    bins: list[list[str]] = [[] for _ in range(n)]
    totals = [0.0] * n
    for lab in sorted(seconds, key=lambda lab: (-seconds[lab], lab)):
        target = min(range(n), key=lambda i: (totals[i], i))
        bins[target].append(lab)
        totals[target] += seconds[lab]
    return bins


def shard(lab_ids: Iterable[str], results: Mapping[str, Record], k: int, n: int) -> list[str]:
    """The labs of share k of n (in the order given), balanced by the recorded durations."""
    lab_ids = list(lab_ids)
    mine = set(shards(durations(lab_ids, results), n)[k - 1])
    return [lab for lab in lab_ids if lab in mine]


def longest_first(lab_ids: Iterable[str], results: Mapping[str, Record],
                  steps: Mapping[str, int] | None = None) -> list[str]:
    """The labs by recorded duration, longest first (ties by id): run in parallel in that order,
    the long labs start early and the short ones fill the gaps at the end."""
    seconds = durations(lab_ids, results, steps)
    return sorted(seconds, key=lambda lab: (-seconds[lab], lab))
