"""Node-to-worker commands cross a multiprocessing pipe: each must pickle to an equal
value, and stay frozen."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from hongbao.client.commands import SetQps
from hongbao.node.commands import SetPhase, Stop
from hongbao.server.commands import Retune, SetSendRate, SetShakeRate, SkipIds

COMMANDS = [Stop(), SetPhase("phase2"), SetQps(250), SetShakeRate(100.0, 5000),
            SetSendRate(25.0, 1000, 0, 99), Retune("send", 12.5), SkipIds(4001, 9003)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_a_command_arrives_equal_after_the_pipe(command: object) -> None:
    assert pickle.loads(pickle.dumps(command)) == command


@pytest.mark.parametrize("command", COMMANDS[1:], ids=lambda c: type(c).__name__)
def test_a_command_cannot_be_changed_on_its_way(command: object) -> None:
    field = dataclasses.fields(command)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(command, field, None)
