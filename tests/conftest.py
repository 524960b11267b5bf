import os

import pytest
import torch

# Reproducible and polite on a 2-core machine.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def cli():
    """Invoke the real Typer app in-process and return the result (stdout and stderr kept apart)."""
    from typer.testing import CliRunner

    from sqnxt_edge.cli.main import app

    runner = CliRunner()

    def invoke(*args, **kwargs):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return invoke
