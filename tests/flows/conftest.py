"""One Prefect test harness (a temporary API and database) for all flow tests of the session."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def prefect_api():
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    # The temporary server takes 30+ s to start on a loaded 2-core machine (default limit: 30 s).
    with prefect_test_harness(server_startup_timeout=240):
        yield
