"""GitHub's error bodies, as its REST and GraphQL APIs send them."""

from __future__ import annotations

from http import HTTPStatus

REST_DOCS = "https://docs.github.com/rest"
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = f"{RATE_LIMIT_DOCS}#about-secondary-rate-limits"
PRIMARY_DOCS = f"{RATE_LIMIT_DOCS}#about-the-primary-rate-limit"

JSON = dict[str, object]


def rest_error(status: int, message: str, documentation_url: str = REST_DOCS) -> JSON:
    return {"message": message, "documentation_url": documentation_url, "status": str(status)}


def not_found(documentation_url: str = REST_DOCS) -> JSON:
    return rest_error(404, "Not Found", documentation_url)


def bad_credentials() -> JSON:
    return rest_error(401, "Bad credentials")


def requires_authentication() -> JSON:
    return rest_error(401, "Requires authentication")


def secondary_limit(status: int, request_id: str) -> JSON:
    message = (
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
        "again. If you reach out to GitHub Support for help, please include the request ID "
        f"{request_id}."
    )
    return rest_error(status, message, SECONDARY_DOCS)


def primary_limit(status: int, user_id: int | None, request_id: str) -> JSON:
    who = f"user ID {user_id}" if user_id is not None else "127.0.0.1"
    message = f"API rate limit exceeded for {who}."
    if user_id is None:
        message += (
            " (But here's the good news: Authenticated requests get a higher rate limit. "
            "Check out the documentation for more details.)"
        )
    message += (
        f" If you reach out to GitHub Support for help, please include the request ID {request_id}."
    )
    return rest_error(status, message, PRIMARY_DOCS)


def graphql_rate_limited(user_id: int, error_type: str = "RATE_LIMITED") -> JSON:
    if error_type == "RATE_LIMITED":  # the documented shape
        error: JSON = {
            "type": error_type,
            "message": f"API rate limit exceeded for user ID {user_id}.",
        }
    else:  # the shape reported from github.com in 2026
        error = {
            "type": error_type,
            "code": "graphql_rate_limit",
            "message": f"API rate limit already exceeded for user ID {user_id}.",
        }
    return {"errors": [error]}


def graphql_requires_authentication() -> JSON:
    return {
        "message": "This endpoint requires you to be authenticated.",
        "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
    }


def server_error(status: int, *, graphql: bool, request_id: str) -> JSON:
    if graphql and status == 502:
        message = (
            "Something went wrong while executing your query. This may be the result of a "
            "timeout, or it could be a GitHub bug. Please include "
            f"`{request_id}` when reporting this issue."
        )
        return {"data": None, "errors": [{"message": message}]}
    if status == 504:
        return {
            "message": "We couldn't respond to your request in time. Sorry about that. Please "
            "try resubmitting your request and contact us if the problem persists."
        }
    return {"message": HTTPStatus(status).phrase}


def for_status(status: int, *, graphql: bool, request_id: str) -> JSON:
    """The body GitHub sends with an error ``status`` that has no more specific cause."""
    if status == 401:
        return bad_credentials()
    if status == 404:
        return not_found()
    if status >= 500:
        return server_error(status, graphql=graphql, request_id=request_id)
    return rest_error(status, HTTPStatus(status).phrase)
