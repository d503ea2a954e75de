"""The driver pool (servicekit.driverpool) with fake connections: reuse, the bound, waiting in
line, and connections never reused after a failure or with a transaction left open."""

import asyncio

import pytest

from servicekit.driverpool import DriverPool


class FakeConnection:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.in_transaction = False

    def is_closed(self) -> bool:
        return self.closed

    def is_in_transaction(self) -> bool:
        return self.in_transaction

    def terminate(self) -> None:
        self.closed = True

    async def close(self, timeout: float | None = None) -> None:
        self.closed = True


def fake_pool(max_size: int, max_idle: float = 300.0) -> tuple[DriverPool, list[FakeConnection]]:
    opened: list[FakeConnection] = []

    async def connect() -> FakeConnection:
        await asyncio.sleep(0)
        opened.append(FakeConnection(len(opened)))
        return opened[-1]

    return DriverPool(connect, max_size, max_idle), opened


async def test_a_released_connection_is_reused():
    pool, opened = fake_pool(4)
    async with pool.connection() as first:
        pass
    async with pool.connection() as second:
        assert second is first
    assert len(opened) == 1 and pool.size == 1 and not first.closed


async def test_at_most_max_size_open_and_the_others_wait_their_turn():
    pool, opened = fake_pool(2)
    busy = 0
    most = 0

    async def use() -> None:
        nonlocal busy, most
        async with pool.connection():
            busy += 1
            most = max(most, busy)
            await asyncio.sleep(0.001)
            busy -= 1

    await asyncio.gather(*(use() for _ in range(10)))
    assert most == 2 and len(opened) == 2 and pool.size == 2


async def test_a_connection_whose_user_raised_is_closed_and_its_place_freed_for_a_waiter():
    pool, opened = fake_pool(1)
    entered = asyncio.Event()

    async def fail() -> None:
        async with pool.connection():
            entered.set()
            await asyncio.sleep(0.001)
            raise ValueError("the statement failed")

    async def wait() -> FakeConnection:
        await entered.wait()
        async with pool.connection() as connection:
            return connection

    failing, waiting = asyncio.create_task(fail()), asyncio.create_task(wait())
    with pytest.raises(ValueError):
        await failing
    second = await waiting
    assert opened[0].closed and second is opened[1] and not second.closed and pool.size == 1


async def test_a_connection_left_in_a_transaction_is_not_reused():
    pool, opened = fake_pool(2)
    async with pool.connection() as connection:
        connection.in_transaction = True
    async with pool.connection() as again:
        assert again is not connection
    assert connection.closed and pool.size == 1


async def test_a_cancelled_waiter_does_not_lose_the_connection():
    pool, opened = fake_pool(1)
    async with pool.connection():
        waiter = asyncio.create_task(pool.connection().__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    async with pool.connection() as connection:
        assert connection is opened[0]
    assert pool.size == 1


async def test_close_closes_the_idle_and_refuses_more():
    pool, opened = fake_pool(2)
    async with pool.connection() as connection:
        pass
    await pool.close()
    assert connection.closed
    with pytest.raises(RuntimeError):
        async with pool.connection():
            pass


async def test_a_connection_idle_too_long_is_closed_and_not_handed_out():
    pool, opened = fake_pool(2, max_idle=0.01)
    async with pool.connection() as old:
        pass
    await asyncio.sleep(0.02)
    async with pool.connection() as fresh:
        assert fresh is not old
    await asyncio.sleep(0)  # the polite close runs
    assert old.closed and not fresh.closed and pool.size == 1


async def test_a_free_place_handed_to_a_waiter_cancelled_at_that_moment_goes_to_the_next_in_line():
    pool, opened = fake_pool(1)
    holder = await pool._acquire()
    first = asyncio.ensure_future(pool._acquire())
    second = asyncio.ensure_future(pool._acquire())
    await asyncio.sleep(0)  # both wait in line
    pool._discard(holder)  # the place is freed: handed to the first waiter...
    first.cancel()  # ...which is cancelled before it runs again
    connection = await asyncio.wait_for(second, 1)  # without passing the place on: waits forever
    assert connection is not holder and pool.size == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_an_idle_connection_the_server_closed_is_passed_over_and_its_place_reused():
    pool, opened = fake_pool(max_size=2)
    async with pool.connection() as first, pool.connection() as second:
        pass
    assert pool.size == 2
    second.closed = True  # dropped by the server while idle (next to be taken: the newest)
    async with pool.connection() as c:
        assert c is first and not c.closed
    first.closed = True
    second_round = []
    async with pool.connection() as c1, pool.connection() as c2:  # both places: two new connections
        second_round = [c1, c2]
    assert [c.number for c in second_round] == [2, 3] and pool.size == 2 and len(opened) == 4
