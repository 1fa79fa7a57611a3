"""Publication claims on the real Valkey: one delivery at a time publishes a candid."""

from __future__ import annotations

import pytest

from boom_tasks.output import claims
from boom_tasks.services.valkey import get_client
from boom_tasks.surveys.ztf import ZTF

pytestmark = pytest.mark.services


def test_a_candid_claimed_by_one_delivery_is_left_by_another_until_released(services, unique):
    client = get_client(services.valkey)
    base = int(unique, 16) % 10**9 * 10
    a, b, c = base, base + 1, base + 2
    # Given delivery A holding candids a and b
    assert claims.claim(client, ZTF, [a, b], "A") == [a, b]
    # When delivery B, holding the same alerts and one more, claims them
    # Then it holds only the free one
    assert claims.claim(client, ZTF, [a, b, c], "B") == [c]
    # And A's redelivery (same message id) takes its own claims back
    assert claims.claim(client, ZTF, [a, b], "A") == [a, b]
    # And B cannot release A's claims; once A releases them, B gets them
    claims.release(client, ZTF, [a, b], "B")
    assert claims.claim(client, ZTF, [a], "B") == []
    claims.release(client, ZTF, [a, b], "A")
    assert claims.claim(client, ZTF, [a, b], "B") == [a, b]
    claims.release(client, ZTF, [a, b, c], "B")
    assert not client.exists(*[f"boom:ztf:publishing:{x}" for x in (a, b, c)])
    # And outside a worker, each call gets a token of its own
    assert claims.delivery_token() != claims.delivery_token()
