"""ValueBench items, Kang et al.'s roles, and the seeded role/item splits (Kang et al., Section 2-3).

* Items: the 366 ValueBench questionnaire items of the paper's 17 values, each with its agreement
  direction (+1, or -1 when reverse-keyed) and a stable ``item_id``.
* Roles: the empty role ``r0`` plus the paper's 125 roles; ``r1``-``r100`` are ``players100.json``
  (train) and ``r101``-``r125`` are ``players25.json`` (test), in file order. ``r0`` is a train role
  (the paper's 101 training roles include the empty role).
* Item split (seeded, per value): ceil(30%) of each value's items are test items, the rest are
  train items; train roles only ever see train items and test roles only test items.
* Per role and value, a sample of ceil(``item_fraction`` x pool) items, seeded by seed, role name and
  value name only, so every steering config sees the same items for the same role (as the authors'
  code does). ``item_fraction`` defaults to 0.4 for train roles (the paper) and 1.0 for test roles.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from lm_eval_tasks.resources import data_path
from lm_eval_tasks.values import check_value

SPLITS = ("train", "test")
TEST_ITEM_SHARE = 0.3
DEFAULT_ITEM_FRACTION = {"train": 0.4, "test": 1.0}
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Item:
    item_id: str
    value: str
    agreement: int
    question: str
    questionnaire: str


@dataclass(frozen=True)
class Role:
    role_id: str
    role_name: str
    trait: str
    split: str


@lru_cache(maxsize=1)
def load_items() -> tuple[Item, ...]:
    with open(data_path("valuebench", "items.csv"), newline="", encoding="utf-8") as fh:
        return tuple(
            Item(
                item_id=row["item_id"],
                value=row["value"],
                agreement=int(row["agreement"]),
                question=row["question"],
                questionnaire=row["questionnaire"],
            )
            for row in csv.DictReader(fh)
        )


@lru_cache(maxsize=1)
def load_definitions() -> dict[str, str]:
    """Value -> definition for Templates 2-4 (trailing period dropped, as the paper prints them)."""
    raw = json.loads(data_path("valuebench", "definitions.json").read_text(encoding="utf-8"))
    return {v: entry["definition"].strip().rstrip(".") for v, entry in raw.items()}


@lru_cache(maxsize=1)
def load_roles() -> tuple[Role, ...]:
    roles = [Role("r0", "", "", "train")]
    for filename, split in (("players100.json", "train"), ("players25.json", "test")):
        players = json.loads(data_path("kang", filename).read_text(encoding="utf-8"))
        for name, profile in players.items():
            roles.append(Role(f"r{len(roles)}", name, profile["mini_trait"], split))
    return tuple(roles)


def _rng(*key: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(k) for k in key).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def split_items(value: str, seed: int = DEFAULT_SEED) -> dict[str, list[Item]]:
    """The seeded train/test item split of one value: ceil(30%) test, the rest train."""
    check_value(value)
    items = sorted((i for i in load_items() if i.value == value), key=lambda i: i.item_id)
    shuffled = list(items)
    _rng("item-split", seed, value).shuffle(shuffled)
    n_test = math.ceil(TEST_ITEM_SHARE * len(items))
    test_ids = {i.item_id for i in shuffled[:n_test]}
    return {
        "test": [i for i in items if i.item_id in test_ids],
        "train": [i for i in items if i.item_id not in test_ids],
    }


def sample_items(
    role: Role, value: str, split: str, item_fraction: float, seed: int = DEFAULT_SEED
) -> list[Item]:
    """ceil(item_fraction x pool) items of ``value`` for ``role``, seeded by seed, role name, value."""
    pool = split_items(value, seed)[split]
    k = math.ceil(item_fraction * len(pool))
    chosen = _rng("item-sample", seed, role.role_name, value).sample(pool, k)
    return sorted(chosen, key=lambda i: i.item_id)


def select_roles(
    split: str, num_roles: int | None = None, roles: Sequence[str] | str | None = None
) -> list[Role]:
    """Roles of a split: the first ``num_roles`` in order, or those named in ``roles`` (ids or names)."""
    if split not in SPLITS:
        raise ValueError(f"role split {split!r} is not one of {SPLITS}.")
    pool = [r for r in load_roles() if r.split == split]
    if roles is not None:
        wanted = [roles] if isinstance(roles, str) else list(roles)
        by_key = {r.role_id: r for r in pool} | {r.role_name: r for r in pool if r.role_name}
        unknown = [w for w in wanted if w not in by_key]
        if unknown:
            raise ValueError(
                f"metadata `roles` names {unknown}, which are not {split} roles; use role ids "
                f"({pool[0].role_id}..{pool[-1].role_id}) or names from kang/players*.json."
            )
        pool = [by_key[w] for w in wanted]
    if num_roles is not None:
        if int(num_roles) < 1:
            raise ValueError(f"metadata `num_roles`={num_roles} must be >= 1.")
        pool = pool[: int(num_roles)]
    return pool
