"""The nesting guard in front of ijson: exact depth across any chunking, strings ignored."""

from __future__ import annotations

import io
import json
import random

import pytest

from connectors.json_guard import NestingGuard, NestingTooDeep, ReadLimit


def depth_of(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


TRICKY = ['a"b', "[[[", "]]}}", "\\", '\\"[', "x\\\\", "{\"", "é[", ""]


def random_doc(rng: random.Random, level: int = 0):
    roll = rng.random()
    if level > 12 or roll < 0.3:
        return rng.choice([rng.choice(TRICKY), rng.random(), None, True, 7])
    if roll < 0.65:
        return [random_doc(rng, level + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(TRICKY) + str(n): random_doc(rng, level + 1)
            for n in range(rng.randint(0, 4))}


def read_all(guard, rng):
    while guard.read(rng.randint(1, 7)):
        pass


@pytest.mark.parametrize("seed", range(40))
def test_depth_is_exact_whatever_the_chunks(seed):
    rng = random.Random(seed)
    doc = random_doc(rng)
    text = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
    depth = depth_of(doc)
    read_all(NestingGuard(io.BytesIO(text), max_depth=depth), rng)  # exactly at the limit
    if depth:
        with pytest.raises(NestingTooDeep):
            read_all(NestingGuard(io.BytesIO(text), max_depth=depth - 1), rng)


def test_a_bomb_stops_early_and_read_limit_ends_there():
    text = b'{"images": [1, 2], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    guard = NestingGuard(io.BytesIO(text))
    with pytest.raises(NestingTooDeep, match="deeper than 512 levels within bytes 0-65536"):
        while guard.read(1 << 16):
            pass
    limited = ReadLimit(io.BytesIO(text), 10)
    assert limited.read(4) + limited.read() == text[:10] and limited.read() == b""
