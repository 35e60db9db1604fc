"""TokenDelta keeps the dataclass promises although its ``__init__`` is written by hand."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from cortan.engine.events import TokenDelta


def test_token_delta_sets_every_field() -> None:
    delta = TokenDelta(3, "abc")
    assert [f.name for f in dataclasses.fields(TokenDelta)] == ["request_id", "text"]
    assert dataclasses.asdict(delta) == {"request_id": 3, "text": "abc"}
    assert TokenDelta(request_id=3, text="abc") == delta


def test_token_delta_is_frozen_hashable_and_slotted() -> None:
    delta = TokenDelta(1, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delta.text = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del delta.text
    assert not hasattr(delta, "__dict__")
    assert hash(delta) == hash(TokenDelta(1, "x"))
    assert repr(delta) == "TokenDelta(request_id=1, text='x')"


def test_token_delta_replace_and_pickle() -> None:
    delta = TokenDelta(1, "x")
    assert dataclasses.replace(delta, text="y") == TokenDelta(1, "y")
    assert pickle.loads(pickle.dumps(delta)) == delta
