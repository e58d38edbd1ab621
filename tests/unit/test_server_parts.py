"""The server's parts without a model: stop strings, slot pool, flags from the settings."""

from __future__ import annotations

import asyncio

import pytest

from runtime.server.jobs import SlotPool, StopMatcher
from runtime.server.settings import ServerSettings, option_specs


def _run(matcher: StopMatcher, chunks: list[str]) -> tuple[str, bool]:
    out = []
    for chunk in chunks:
        text, hit = matcher.feed(chunk)
        out.append(text)
        if hit:
            return "".join(out), True
    out.append(matcher.flush())
    return "".join(out), False


@pytest.mark.parametrize(
    ("stops", "chunks", "want", "hit"),
    [
        ([], ["a", "b", "c"], "abc", False),
        (["\n\n"], ["line one", "\n", "\nline two"], "line one", True),
        (["END"], ["the E", "N", "D of it"], "the ", True),
        (["END"], ["the E", "N", "d of it"], "the ENd of it", False),
        (["xyz", "b"], ["aaab", "xyz"], "aaa", True),
        (["", "stop"], ["go", " on"], "go on", False),
        (["ab"], ["a"], "a", False),
    ],
)
def test_stop_matcher(stops: list[str], chunks: list[str], want: str, hit: bool) -> None:
    assert _run(StopMatcher(stops), chunks) == (want, hit)


def test_stop_matcher_never_releases_a_partial_stop_string() -> None:
    m = StopMatcher(["<end>"])
    released = ""
    for ch in "some text <en":
        released += m.feed(ch)[0]
    assert "<" not in released and released == "some text"


def test_slot_pool_is_first_come_first_served() -> None:
    async def scenario() -> list[int]:
        pool = SlotPool(1)
        first = await pool.acquire(1.0)
        order: list[int] = []

        async def waiter(i: int) -> None:
            slot = await pool.acquire(5.0)
            order.append(i)
            await asyncio.sleep(0.01)
            pool.release(slot)

        tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
        await asyncio.sleep(0.05)
        assert pool.waiting == 3 and pool.active == 1
        pool.release(first)
        await asyncio.gather(*tasks)
        assert pool.free == [0] and pool.waiting == 0
        return order

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_slot_pool_times_out_and_gives_nothing_away() -> None:
    async def scenario() -> None:
        pool = SlotPool(1)
        slot = await pool.acquire(1.0)
        with pytest.raises(asyncio.TimeoutError):
            await pool.acquire(0.2)
        assert pool.waiting == 0
        pool.release(slot)
        assert pool.free == [0]

    asyncio.run(scenario())


def test_every_setting_is_a_flag_of_both_entry_points() -> None:
    from backplan.commands.serve import serve
    from runtime.server.__main__ import parse_args

    names = set(ServerSettings.model_fields)
    assert {s.name for s in option_specs()} == names
    assert {p.name for p in serve.params} == names
    argv = [
        "--model",
        "m.gguf",
        "--api-key",
        "a",
        "--api-key",
        "b",
        "--parallel",
        "3",
        "--insecure",
        "--timeout-s",
        "2.5",
        "--strategy",
        "vgb",
        "--n-threads",
        "2",
    ]
    s = parse_args(argv)
    assert s.api_key == ["a", "b"] and s.parallel == 3 and s.insecure and s.timeout_s == 2.5
    assert s.strategy == "vgb" and s.n_threads == 2 and s.model == "m.gguf"
    ctx = serve.make_context("serve", list(argv))
    assert ServerSettings(**{**ctx.params, "api_key": list(ctx.params["api_key"])}) == s
    assert parse_args([]) == ServerSettings()
    # no flags: both entry points give the settings' defaults (a setting on by default too)
    bare = serve.make_context("serve", [])
    assert ServerSettings(**{**bare.params, "api_key": []}) == ServerSettings()
    assert ServerSettings().prompt_cache and not parse_args(["--no-prompt-cache"]).prompt_cache
    off = serve.make_context("serve", ["--no-prompt-cache"])
    assert off.params["prompt_cache"] is False
    with pytest.raises(SystemExit):
        parse_args(["--parallel", "0"])
