"""End-to-end fixtures: cheap token hashes (as Django's test settings do for passwords).

Production hashes tokens with argon2id at OWASP's parameters (about 25 ms per
hash and per first verification; ``tests/unit/test_identity.py`` checks them).
The end-to-end tests add a dozen users per test, so here the same argon2id code
runs with the smallest parameters; the CLI tests, in their own processes, keep
the production ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from application import identity


@pytest.fixture(autouse=True, scope="module")
def cheap_token_hashes() -> Iterator[None]:
    production = identity._HASHER
    identity._HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    try:
        yield
    finally:
        identity._HASHER = production
