"""Pages of sessions with their PR facts: every session once, in order, from every store."""

from __future__ import annotations

import pytest

from orchestrator.domain.errors import InvalidInputError
from orchestrator.domain.model import PRComment, PRFacts
from orchestrator.domain.pages import SessionListing, encode_cursor
from orchestrator.domain.prs import NO_PR
from tests.contract.support import PR1, PR2, ContractStore, at, observation, session


async def walk(
    store: ContractStore, limit: int, project_id: str | None = None
) -> list[list[SessionListing]]:
    pages, cursor = [], None
    while True:
        page = await store.list_session_page(limit=limit, cursor=cursor, project_id=project_id)
        pages.append(list(page.items))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_pages_list_every_session_once_in_order_with_its_pr(store: ContractStore) -> None:
    for project_id in ("mer", "ao", "mer", "zed", "ao", "mer", "ao"):
        await session(store, project_id)
    first = (await store.list_sessions())[0]
    await store.write_pr_observation(first.id, observation(), at(1))
    pages = await walk(store, 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [item for page in pages for item in page]
    assert [item.record for item in listed] == await store.list_sessions()
    for item in listed:
        assert item.pr == await store.pr_facts_for_session(item.record.id)
    assert listed[0].pr.url == PR1
    assert (await walk(store, 7))[0] == listed  # an exact fit: no empty page after it
    assert await walk(store, 100, project_id="mer") == [
        [i for i in listed if i.record.project_id == "mer"]
    ]


async def test_a_page_shows_the_pr_that_speaks_for_each_session(store: ContractStore) -> None:
    record = await session(store)
    bare = await session(store)
    comment = PRComment(id="c1", author="ann", body="nit")
    await store.write_pr_observation(record.id, observation(PR1, comments=(comment,)), at(1))
    await store.write_pr_observation(record.id, observation(PR2, number=2, merged=True), at(2))
    page = await store.list_session_page(limit=10)
    assert [item.pr for item in page.items] == [
        PRFacts.of_pr(
            url=PR1,
            number=1,
            state=observation().state,
            ci=observation().ci,
            review=observation().review,
            mergeability=observation().mergeability,
            review_comments=True,
        ),  # the open PR speaks, though the merged one is newer
        NO_PR,
    ]
    assert page.items[1].record.id == bare.id


async def test_a_cursor_resumes_after_its_session_whatever_was_created_since(
    store: ContractStore,
) -> None:
    for _ in range(3):
        await session(store, "mer")
    page = await store.list_session_page(limit=2)
    assert [i.record.id for i in page.items] == ["mer-1", "mer-2"]
    await session(store, "ao")  # sorts before the cursor: not in the rest of this walk
    await session(store, "mer")
    rest = await store.list_session_page(limit=10, cursor=page.next_cursor)
    assert [i.record.id for i in rest.items] == ["mer-3", "mer-4"]
    assert rest.next_cursor is None
    beyond = await store.list_session_page(limit=10, cursor=encode_cursor("zzz", 1))
    assert beyond.items == ()
    assert beyond.next_cursor is None


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "WyJhIl0"])
async def test_a_bad_cursor_is_invalid_input(store: ContractStore, cursor: str) -> None:
    await session(store)
    with pytest.raises(InvalidInputError, match="cursor"):
        await store.list_session_page(limit=1, cursor=cursor)


async def test_a_page_holds_at_least_one_session(store: ContractStore) -> None:
    with pytest.raises(InvalidInputError):
        await store.list_session_page(limit=0)
    assert (await store.list_session_page(limit=1)).items == ()
