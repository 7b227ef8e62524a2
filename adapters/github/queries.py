"""GraphQL query texts and their variables.

Values always travel as variables, never spliced into the text, so a repository or branch
name cannot change a query. Open-PR discovery needs no GraphQL: the REST listing of open
PRs already carries every head ref, and it can be revalidated with an ETag for free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Final

from orchestrator.domain.scm import PRRef

MAX_BATCH: Final = 25
"""PRs per detail query. GitHub charges a query by the connections it asks for, per 100:
25 PRs with one commit and 100 check contexts each stays at the minimum of one point."""

CONTEXTS_PAGE: Final = 100  # GitHub's maximum for a connection
THREADS_WINDOW: Final = 50
COMMENTS_PER_THREAD: Final = 5
REVIEWS_WINDOW: Final = 20


@dataclass(frozen=True)
class Query:
    text: str
    variables: dict[str, object] = field(default_factory=dict)


CHECK_CONTEXT_FIELDS: Final = """
          __typename
          ... on CheckRun {
            databaseId name status conclusion detailsUrl startedAt completedAt
            checkSuite { app { slug } }
          }
          ... on StatusContext { context state targetUrl createdAt }"""

PR_FRAGMENT: Final = f"""
fragment PR on PullRequest {{
  id number url state isDraft merged closed title
  headRefName headRefOid baseRefName headRepository {{ nameWithOwner }}
  author {{ login __typename }}
  mergeable mergeStateStatus reviewDecision
  createdAt updatedAt mergedAt closedAt
  commits(last: 1) {{ nodes {{ commit {{ oid
    statusCheckRollup {{ state
      contexts(first: {CONTEXTS_PAGE}) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{{CHECK_CONTEXT_FIELDS}
        }}
      }}
    }}
  }} }} }}
}}"""


def alias(index: int) -> str:
    return f"pr{index}"


@cache
def _batch_text(size: int) -> str:
    declared = ", ".join(f"$o{i}: String!, $n{i}: String!, $p{i}: Int!" for i in range(size))
    selections = "\n".join(
        f"  {alias(i)}: repository(owner: $o{i}, name: $n{i}) {{ pullRequest(number: $p{i}) "
        "{ ...PR } }"
        for i in range(size)
    )
    return (
        f"query Batch({declared}) {{\n{selections}\n"
        "  rateLimit { cost remaining resetAt }\n}\n" + PR_FRAGMENT
    )


def pr_batch(refs: Sequence[PRRef]) -> Query:
    """Details of up to ``MAX_BATCH`` PRs in one query; ``prN`` answers ``refs[N]``."""
    if not 1 <= len(refs) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} PRs, not {len(refs)}")
    variables: dict[str, object] = {}
    for i, ref in enumerate(refs):
        variables |= {f"o{i}": ref.repo.owner, f"n{i}": ref.repo.name, f"p{i}": ref.number}
    return Query(_batch_text(len(refs)), variables)


CONTEXTS_QUERY: Final = f"""
query Contexts($o: String!, $n: String!, $p: Int!, $after: String!) {{
  repository(owner: $o, name: $n) {{ pullRequest(number: $p) {{
    commits(last: 1) {{ nodes {{ commit {{ oid
      statusCheckRollup {{
        contexts(first: {CONTEXTS_PAGE}, after: $after) {{
          pageInfo {{ hasNextPage endCursor }}
          nodes {{{CHECK_CONTEXT_FIELDS}
          }}
        }}
      }}
    }} }} }}
  }} }}
}}"""


def check_contexts_page(ref: PRRef, after: str) -> Query:
    """The next page of a PR's head-commit check contexts, after cursor ``after``."""
    return Query(
        CONTEXTS_QUERY, {"o": ref.repo.owner, "n": ref.repo.name, "p": ref.number, "after": after}
    )


REVIEWS_QUERY: Final = f"""
query Reviews($o: String!, $n: String!, $p: Int!, $before: String) {{
  repository(owner: $o, name: $n) {{ pullRequest(number: $p) {{
    reviewDecision updatedAt
    reviewThreads(last: {THREADS_WINDOW}, before: $before) {{
      pageInfo {{ hasPreviousPage startCursor }}
      nodes {{ id isResolved isOutdated path line
        comments(first: {COMMENTS_PER_THREAD}) {{
          nodes {{ id databaseId url body createdAt author {{ login __typename }} }}
        }}
      }}
    }}
    reviews(last: {REVIEWS_WINDOW}, states: [APPROVED, CHANGES_REQUESTED]) {{
      nodes {{ id state url body submittedAt commit {{ oid }} author {{ login __typename }} }}
    }}
  }} }}
}}"""


def review_threads(ref: PRRef, before: str | None = None) -> Query:
    """A PR's newest review threads (or the window before cursor ``before``) and its
    latest approving or change-requesting reviews."""
    return Query(
        REVIEWS_QUERY,
        {"o": ref.repo.owner, "n": ref.repo.name, "p": ref.number, "before": before},
    )
