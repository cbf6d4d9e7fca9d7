"""The leak-checking pytest plugin ``respool.testing``, run on inner test files with pytester.

The inner runs are in-process and pick the plugin up the way users get it:
through its ``pytest11`` entry point (the package is installed, if only
editable).  Every inner run uses ``-W error --strict-markers --strict-config``,
so a warning or an unregistered marker or option from the plugin fails it.
"""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

# pytest-asyncio, installed for examples/pytest_fixtures/ (tested there, with it), is
# kept out, as in our own runs: unconfigured, it warns, and -W error fails the run.
STRICT = (
    *("-p", "no:cacheprovider", "-p", "no:asyncio"),
    *("-W", "error", "--strict-markers", "--strict-config"),
)

# Inner test files share this module: a sync pool of sqlite3-like resources
# that cannot be weakly referenced (like sqlite3.Connection), and helpers
# that acquire one level down, so a report must name both lines.
POOLS = """
    import pytest
    import respool


    class Conn:
        __slots__ = ("closed",)

        def __init__(self):
            self.closed = False

        def close(self):
            self.closed = True

        def __repr__(self):
            return "<Conn>"


    def checkout(pool):
        return pool.acquire()  # SITE: helper


    async def acheckout(pool):
        return await pool.acquire()  # SITE: async helper


    async def new_conn():
        return Conn()


    @pytest.fixture
    def pool():
        with respool.Pool(Conn, Conn.close, pool_size=2) as pool:
            yield pool
"""


@pytest.fixture(autouse=True)
def _plugins_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)


def write(pytester: pytest.Pytester, body: str) -> dict[str, int]:
    """Write pools.py and test_inner.py; return the line of every ``# SITE: name`` marker."""
    pytester.makepyfile(pools=textwrap.dedent(POOLS))
    pytester.makepyfile(test_inner=textwrap.dedent(body))
    sites = {}
    for name in ("pools.py", "test_inner.py"):
        for number, line in enumerate((pytester.path / name).read_text().splitlines(), 1):
            if "# SITE: " in line:
                sites[line.split("# SITE: ")[1].strip()] = number
    return sites


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "respool"]
    assert [ep.value for ep in found] == ["respool.testing"]


def test_a_marked_test_that_leaks_fails_naming_the_acquire_sites(
    pytester: pytest.Pytester,
) -> None:
    sites = write(
        pytester,
        """
        import pytest
        from pools import checkout, pool


        @pytest.mark.respool_leaks
        def test_leaks(pool):
            checkout(pool)  # SITE: test
            with pool.lease():
                pass


        @pytest.mark.respool_leaks
        def test_clean(pool):
            conn = checkout(pool)
            pool.release(conn)
            with pool.lease():
                pass


        def test_leaks_unchecked(pool):
            checkout(pool)
        """,
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "respool: 1 resource still leased after the test (from 1 of the 1 pool created*",
            "<Conn> from <Pool closed pool_size=2 size=1 idle=0 leased=1*",
            f"  acquired at pools.py:{sites['helper']} in checkout",
            "      return pool.acquire()  # SITE: helper",
            f"  called from test_inner.py:{sites['test']} in test_leaks",
            "      checkout(pool)  # SITE: test",
            "*short test summary*",
            "ERROR test_inner.py::test_leaks - Failed: respool: 1 resource still leased*",
        ]
    )
    # Only the user's frames: not respool's, pytest's or pluggy's.
    result.stdout.no_fnmatch_line("*_pytest*")
    result.stdout.no_fnmatch_line("*respool/_sync*")
    assert "test_clean" not in result.stdout.str().split("short test summary")[1]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_without_a_marker_nothing_is_checked(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        """
        from pools import checkout, pool


        def test_leaks(pool):
            checkout(pool)
        """,
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*respool:*")


@pytest.mark.parametrize(
    "how",
    ["flag", "ini"],
)
def test_the_flag_or_ini_option_checks_every_test_and_the_marker_opts_out(
    pytester: pytest.Pytester, how: str
) -> None:
    sites = write(
        pytester,
        """
        import pytest
        from pools import checkout, pool


        def test_leaks(pool):
            checkout(pool)  # SITE: test


        @pytest.mark.respool_leaks(enabled=False)
        def test_exempt(pool):
            checkout(pool)


        @pytest.mark.respool_leaks(False)
        def test_exempt_positional(pool):
            checkout(pool)


        def test_clean(pool):
            with pool.lease():
                pass
        """,
    )
    if how == "flag":
        result = pytester.runpytest(*STRICT, "--respool-leaks")
    else:
        pytester.makeini("[pytest]\nrespool_leaks = true\n")
        result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            f"  called from test_inner.py:{sites['test']} in test_leaks",
            "ERROR test_inner.py::test_leaks - Failed: respool: 1 resource*",
        ]
    )


def test_the_fixture_enables_the_check_and_watches_pools_of_earlier_fixtures(
    pytester: pytest.Pytester,
) -> None:
    # `pool` comes before `respool_leak_check` in the arguments, so it is set
    # up first; the plugin still starts watching before it.
    sites = write(
        pytester,
        """
        from pools import checkout, pool


        def test_leaks(pool, respool_leak_check):
            checkout(pool)  # SITE: test


        def test_clean(pool, respool_leak_check):
            with pool.lease():
                pass
        """,
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            f"  called from test_inner.py:{sites['test']} in test_leaks",
        ]
    )


def test_a_lease_a_fixture_gives_back_at_teardown_is_not_a_leak(
    pytester: pytest.Pytester,
) -> None:
    write(
        pytester,
        """
        import pytest
        from pools import checkout, pool


        @pytest.fixture
        def conn(pool):
            conn = checkout(pool)
            yield conn
            pool.release(conn)


        @pytest.mark.respool_leaks
        def test_uses_a_leased_fixture(conn):
            assert not conn.closed
        """,
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=1)


def test_pools_of_wider_scoped_fixtures_are_not_checked(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        """
        import pytest
        import respool
        from pools import Conn, checkout


        @pytest.fixture(scope="module")
        def shared():
            with respool.Pool(Conn, Conn.close) as pool:
                conn = checkout(pool)  # held across the module's tests
                yield pool
                pool.release(conn)


        @pytest.mark.respool_leaks
        def test_one(shared):
            with shared.lease():
                pass


        @pytest.mark.respool_leaks
        def test_two(shared):
            with shared.lease():
                pass
        """,
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=2)


def test_async_pools_under_asyncio_and_trio_even_dropped_by_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest


        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param
        """
    )
    sites = write(
        pytester,
        """
        import pytest
        import respool
        from pools import Conn, acheckout, new_conn

        pytestmark = [pytest.mark.anyio, pytest.mark.respool_leaks]


        async def test_leaks():
            pool = respool.AsyncPool(new_conn, None)  # dropped when the test returns
            async with pool.lease():
                await acheckout(pool)  # SITE: test


        async def test_clean():
            async with respool.AsyncPool(new_conn, None) as pool:
                conn = await acheckout(pool)
                await pool.release(conn)
        """,
    )
    result = pytester.runpytest(*STRICT)
    result.assert_outcomes(passed=4, errors=2)
    for backend in ("asyncio", "trio"):
        result.stdout.fnmatch_lines(
            [
                f"*ERROR at teardown of test_leaks[[]{backend}[]]*",
                "respool: 1 resource still leased after the test*",
                "<Conn> from <AsyncPool open pool_size=10 size=2 idle=1 leased=1*",
                f"  acquired at pools.py:{sites['async helper']} in acheckout",
                f"  called from test_inner.py:{sites['test']} in test_leaks",
            ]
        )
    # The event loops' and anyio's frames are left out.
    for internal in ("*base_events.py*", "*trio/_core*", "*anyio/*"):
        result.stdout.no_fnmatch_line(internal)
