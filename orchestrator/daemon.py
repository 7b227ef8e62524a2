"""The composition root: wires the store, engine, delivery, observers and HTTP API together,
serves until SIGTERM/SIGINT, then drains in order under one deadline (docs/design.md,
"Daemon and drain").

This is the only module of ``orchestrator/`` that imports ``adapters/``. It is also where
the configured values reach the engine: what the config file sets (reaper tick, probe
timeout and concurrency, retention, drain deadline, the GitHub observer, the cleanup after
a merge) has no default below the config layer.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, cast

import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from adapters.agents import agent_for, clear_line_keys, session_environment
from adapters.github.auth import ENV_CHAIN, TokenChain
from adapters.github.budget import RateBudget
from adapters.github.client import GitHubClient
from adapters.github.etags import LruETagStore
from adapters.github.provider import GitHubProvider
from adapters.http.app import ApiServices, DrainSwitch, create_app
from adapters.http.auth import TokenAuthority, new_daemon_token, new_hook_key
from adapters.http.dashboard import DashboardServices
from adapters.http.dashboard.security import BrowserAuth, allowed_hosts
from adapters.http.dashboard.sqlite_reads import SqliteBoardReads, open_sqlite_board_reads
from adapters.http.dashboard.views import build_card
from adapters.http.dashboard.wiring import (
    PRActionsMerger,
    RuntimePaneCapture,
    StoreNotificationActions,
)
from adapters.http.metrics import metrics_app
from adapters.http.serve import LATE_REQUEST_GRACE, serve_http
from adapters.http.webhooks import GitHubWebhooks
from adapters.legacy_ao import DefaultTmuxServer, LegacyInstallationReader
from adapters.notifiers import DesktopNotifier, LogNotifier, RoutingNotifier, WebhookNotifier
from adapters.sqlite.backup import SqliteBackups
from adapters.sqlite.gauges import database_gauges
from adapters.sqlite.store import SqliteStore, open_sqlite_store
from adapters.tmux import TmuxMessenger, TmuxRuntime, TmuxServer
from adapters.worktree import GitWorktreeWorkspace
from orchestrator.api import API_PREFIX, RunFile
from orchestrator.backups import run_scheduled_backups
from orchestrator.changefeed import ChangeFeed
from orchestrator.clock import SystemClock
from orchestrator.config import BUILTIN_AGENTS, Config
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.model import Priority, SessionRecord
from orchestrator.domain.records import Project
from orchestrator.domain.text import clean_text
from orchestrator.importer import LegacyImporter
from orchestrator.janitor import janitor_policy, run_janitor
from orchestrator.lifecycle.manager import LifecycleManager
from orchestrator.metrics import (
    CountingLifecycle,
    CountingMessenger,
    CountingNotifier,
    Gauges,
    Metrics,
    session_counts,
)
from orchestrator.outbox import OutboxDispatcher
from orchestrator.ports import Clock, Notifier, Runtime
from orchestrator.pr_actions import ObserverKicker, PRActions, SCMMerger
from orchestrator.reaper import Reaper, ReaperLifecycle
from orchestrator.runfile import (
    HOOK_KEY_NAME,
    DataDirLock,
    create_private_file,
    private_dir,
    read_hook_key,
    remove_run_file,
    restrict_modes,
    write_hook_key,
    write_run_file,
)
from orchestrator.scm import LifecycleSink, ObserverSettings, SCMObserver
from orchestrator.sessions import ReconcileReport, RuntimeInventory, SessionManager

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

log = logging.getLogger("orchestrator.daemon")

ETAG_CAPACITY = 8192  # validators kept: a listing per repository, two guards per open PR

SPAWN_STARTUP_CHECK = 1.0
"""Seconds a spawn watches its new pane: an agent that exits within them fails the spawn."""
_MAX_SOCKET_PATH = 100
WORKTREES_DIR_NAME = "worktrees"
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def package_version() -> str:
    try:
        return version("orchestrator")
    except PackageNotFoundError:
        return "0+unknown"


def tmux_socket_path(data_dir: Path) -> Path:
    """``<data dir>/tmux.sock``, or a stable short path when that is too long for a socket."""
    preferred = data_dir / "tmux.sock"
    if len(str(preferred.absolute()).encode()) <= _MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(data_dir.absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"orchestrator-{os.getuid()}" / f"{digest}.sock"


def keep_data_dir_private(config: Config) -> None:
    """The data dir and the worktree root 0700, and every file the daemon keeps there
    owner-only, whatever the umask. The database file is made 0600 before SQLite opens it:
    SQLite gives its -wal and -shm files the database file's mode."""
    private_dir(config.data_dir)
    private_dir(config.data_dir / WORKTREES_DIR_NAME)
    database = config.database_path
    restrict_modes(
        [
            config.log_file,
            config.run_file,
            config.data_dir / HOOK_KEY_NAME,
            *(database.with_name(database.name + suffix) for suffix in _SQLITE_SIDECARS),
        ]
    )
    create_private_file(database)


def token_authority(data_dir: Path) -> TokenAuthority:
    """A new daemon token over the hook key kept in the data dir (made on the first start),
    so the hook tokens of running agents stay valid across restarts and crashes."""
    path = data_dir / HOOK_KEY_NAME
    hook_key = read_hook_key(path)
    if hook_key is None:
        hook_key = new_hook_key()
        write_hook_key(path, hook_key)
    return TokenAuthority(new_daemon_token(), hook_key, save_hook_key=partial(write_hook_key, path))


def build_notifier(
    config: Config, client: httpx.AsyncClient, metrics: Metrics | None = None
) -> Notifier:
    """Log always; desktop and webhooks as the config routes them by priority. With
    ``metrics``, each counts its deliveries and failures under its name."""
    available: dict[str, Notifier] = {"log": LogNotifier()}
    if config.notifiers.desktop:
        available["desktop"] = DesktopNotifier()
    for name, hook in config.notifiers.webhooks.items():
        available[name] = WebhookNotifier(hook.url, slack=hook.slack, client=client)
    if metrics is not None:
        available = {n: CountingNotifier(n, each, metrics) for n, each in available.items()}
    routes: dict[Priority, Sequence[Notifier]] = {
        priority: [available[name] for name in names if name in available and name != "log"]
        for priority, names in config.routing.items()
    }
    return RoutingNotifier(routes, always=[available["log"]])


def build_reaper(
    config: Config, lifecycle: ReaperLifecycle, runtime: Runtime, clock: Clock
) -> Reaper:
    """The reaper over the daemon's runtime, probing as configured (its tick is given to
    ``Reaper.run``)."""
    return Reaper(
        lifecycle,
        {runtime.name: runtime},
        clock,
        concurrency=config.reaper.concurrency,
        probe_timeout=config.reaper.probe_timeout.total_seconds(),
    )


async def reconcile_at_boot(
    config: Config, sessions: SessionManager, inventory: RuntimeInventory
) -> ReconcileReport:
    """The boot reconcile, probing the way the configured reaper does."""
    return await sessions.reconcile(
        inventory=inventory,
        probe_timeout=config.reaper.probe_timeout.total_seconds(),
        concurrency=config.reaper.concurrency,
    )


@dataclass(frozen=True)
class GitHubParts:
    """The GitHub side of the daemon: one client (one rate budget) for every call."""

    client: GitHubClient
    provider: GitHubProvider
    etags: LruETagStore


def build_github(config: Config) -> GitHubParts:
    """The client, budget, token chain and provider ``scm.github`` describes. Nothing is
    resolved or sent here: the token is looked up on the observer's first round."""
    github = config.scm.github
    etags = LruETagStore(ETAG_CAPACITY)
    tokens = TokenChain(
        env_names=(github.token_env, *ENV_CHAIN) if github.token_env else ENV_CHAIN,
        hostname=None if github.host == "github.com" else github.host,
        on_change=etags.clear,  # validators may not carry over to another token
    )
    budget = RateBudget(
        max_concurrency=github.budget.max_concurrency,
        background_reserve=github.budget.background_reserve,
        kick_reserve=github.budget.kick_reserve,
    )
    client = GitHubClient(
        tokens, budget, api_url=github.api_url, graphql_url=github.graphql_url or None
    )
    provider = GitHubProvider(
        client,
        batch_size=github.batch_size,
        log_tail_lines=github.log_tail.lines,
        log_tail_bytes=github.log_tail.max_bytes,
    )
    return GitHubParts(client, provider, etags)


def build_scm_observer(
    config: Config, github: GitHubParts, store: SqliteStore, manager: LifecycleManager, clock: Clock
) -> SCMObserver:
    """The GitHub observer over the daemon's store and engine, paced as configured."""
    section = config.scm.github
    return SCMObserver(
        github.provider,
        LifecycleSink(manager),
        store,
        github.etags,
        clock,
        ObserverSettings.of(section),
        explicit_repos={p.id: p.github for p in config.projects.values() if p.github},
        disabled_reason="" if section.enabled else "switched off (scm.github.enabled: false)",
    )


@dataclass
class _Address:
    """Where the API listens; known only once hypercorn has bound its socket."""

    value: str = ""

    def activity_url(self, session_id: str) -> str:
        return f"http://{self.value}{API_PREFIX}/sessions/{session_id}/activity"


@dataclass
class Daemon:
    """The running pieces, for the drain sequence and for tests."""

    config: Config
    store: SqliteStore
    manager: LifecycleManager
    dispatcher: OutboxDispatcher
    feed: ChangeFeed
    reaper: Reaper
    drain: DrainSwitch
    observer: SCMObserver | None = None
    address: str = ""


async def _register_projects(config: Config, store: SqliteStore, now: datetime) -> None:
    for project in config.projects.values():
        await store.upsert_project(
            Project(
                id=project.id,
                path=str(project.path),
                repo_origin_url=project.repo_origin_url,
                display_name=project.display_name,
                registered_at=now,
            )
        )


async def _janitor(config: Config, store: SqliteStore, clock: SystemClock) -> None:
    """Every retention rule as configured, each ``retention.interval``, forever."""
    await run_janitor(store, janitor_policy(config.retention, config.policy), clock)


GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Call once boot is done. Freezing what boot left alive keeps full collections from
    traversing it (each stalled the event loop ~40 ms under load: bench/engine_bench.py);
    a larger young generation lets most turn garbage die by refcount before a collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


async def serve_daemon(
    config: Config, *, task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the daemon until SIGTERM/SIGINT, then drain. ``task_status`` gets the Daemon once
    it is healthy and the run-file is written."""
    private_dir(config.data_dir)
    with DataDirLock(config.data_dir):
        keep_data_dir_private(config)
        auth = token_authority(config.data_dir)
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(
                open_sqlite_store(
                    config.database_path,
                    synchronous=config.synchronous.value,
                    backups_dir=config.backups_dir,
                )
            )
            http_client = await stack.enter_async_context(httpx.AsyncClient(trust_env=False))
            board = await stack.enter_async_context(open_sqlite_board_reads(config.database_path))
            github = build_github(config)
            stack.push_async_callback(github.client.aclose)
            await _run(config, store, http_client, auth, github, task_status, board)


async def _run(
    config: Config,
    store: SqliteStore,
    http_client: httpx.AsyncClient,
    auth: TokenAuthority,
    github: GitHubParts,
    task_status: trio.TaskStatus[Daemon],
    board: SqliteBoardReads,
) -> None:
    clock = SystemClock()
    await _register_projects(config, store, clock.now())
    tmux = TmuxServer(tmux_socket_path(config.data_dir))
    runtime = TmuxRuntime(tmux)
    metrics = Metrics()
    store.writer.observe_batch = metrics.observe_batch

    async def keys_to_clear_a_line(session_id: str) -> tuple[str, ...]:
        record = await store.get_session(session_id)
        if record is None:
            return ()
        agent = record.metadata.agent or record.lifecycle.harness.value
        return clear_line_keys(agent, config.agents)

    messenger = CountingMessenger(
        TmuxMessenger(tmux, clear_line_keys=keys_to_clear_a_line), metrics
    )
    manager = LifecycleManager(store, clock=clock, policy=config.policy)
    counted = CountingLifecycle(manager, metrics)
    merger = SCMMerger(github.provider, config.scm.github.merge_method)
    dispatcher = OutboxDispatcher(
        store,
        messenger=messenger,
        notifier=build_notifier(config, http_client, metrics),
        clock=clock,
        merger=merger,
    )
    feed = ChangeFeed(store)

    def on_commit() -> None:
        feed.notify()
        dispatcher.wake()

    store.on_commit = on_commit
    address = _Address()

    def hook_environment(record: SessionRecord) -> Mapping[str, str]:
        return session_environment(
            session_id=record.id,
            project_id=record.project_id,
            issue_id=record.issue_id,
            hook_url=address.activity_url(record.id),
            hook_token=auth.session_token(record.id),
        )

    sessions = SessionManager(
        store,
        manager,
        runtime=runtime,
        workspace=GitWorktreeWorkspace(config.data_dir / WORKTREES_DIR_NAME),
        agents=lambda name: agent_for(name, config.agents),
        messenger=messenger,
        clock=clock,
        hook_environment=hook_environment,
        startup_check=SPAWN_STARTUP_CHECK,
    )
    manager.clean_up_merged_sessions(sessions.clean_up_merged, after=config.cleanup.after_merge)
    reaper = build_reaper(config, counted, runtime, clock)
    metrics.source = partial(_gauges, config, board, feed, reaper)
    observer = build_scm_observer(config, github, store, manager, clock)
    drain = DrainSwitch()
    kicker = ObserverKicker(observer)
    secret = config.scm.github.webhook_secret
    webhooks = (
        GitHubWebhooks(secret=secret.encode(), kicker=kicker, deliveries=store, clock=clock)
        if secret
        else None
    )
    backups = SqliteBackups(config.database_path, config.backups_dir)
    pr_actions = PRActions(store, manager, merger=merger, kicker=kicker)
    services = ApiServices(
        store=store,
        lifecycle=counted,
        sessions=sessions,
        changefeed=feed,
        auth=auth,
        drain=drain,
        clock=clock,
        version=package_version(),
        pr_actions=pr_actions,
        github_webhooks=webhooks,
        backups=backups,
        metrics=metrics,
        importer=LegacyImporter(
            store, LegacyInstallationReader(), DefaultTmuxServer(), clock, config.data_dir
        ),
        scm=observer,
    )
    daemon = Daemon(config, store, manager, dispatcher, feed, reaper, drain, observer)
    hypercorn = HypercornConfig()
    hypercorn.bind = [f"{config.host}:{config.port}"]
    hypercorn.graceful_timeout = 1.0
    hypercorn.accesslog = None
    hypercorn.errorlog = logging.getLogger("hypercorn.error")
    http_stopped = trio.Event()

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as root:
            await root.start(manager.run)
            armed = await manager.arm_timers()
            await root.start(feed.run)
            delivery = trio.CancelScope()
            observers = trio.CancelScope()

            async def run_delivery(*, task_status: trio.TaskStatus[None]) -> None:
                with delivery:
                    await dispatcher.run(task_status=task_status)

            async def run_observers(*, task_status: trio.TaskStatus[None]) -> None:
                with observers:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(
                            partial(reaper.run, tick=config.reaper.tick.total_seconds())
                        )
                        nursery.start_soon(_janitor, config, store, clock)
                        if config.metrics.address:
                            await nursery.start(_serve_metrics, config, metrics)
                        nursery.start_soon(
                            partial(
                                run_scheduled_backups,
                                backups,
                                every=config.backup.every.total_seconds(),
                                keep=config.backup.keep,
                            )
                        )
                        await nursery.start(observer.run)
                        task_status.started()

            await root.start(run_delivery)
            report = await reconcile_at_boot(config, sessions, runtime)
            log.info("boot: %d running sessions armed; reconcile: %s", armed, report)
            await root.start(run_observers)
            dashboard = _dashboard(config, store, board, auth, clock, runtime, pr_actions)
            app = cast("ASGIFramework", create_app(services, dashboard))
            http_done = trio.Event()

            async def run_http(*, task_status: trio.TaskStatus[list[str]]) -> None:
                try:
                    await serve_http(app, hypercorn, stop=http_stopped, task_status=task_status)
                finally:
                    http_done.set()

            binds = await root.start(run_http)
            address.value = daemon.address = _host_port(binds)
            write_run_file(
                config.run_file,
                RunFile(
                    pid=os.getpid(),
                    address=address.value,
                    token=auth.token,
                    started_at=clock.now(),
                    version=package_version(),
                ),
            )
            log.info("orchestrator %s listening on http://%s", package_version(), address.value)
            tune_gc()
            task_status.started(daemon)
            try:
                async for signum in signals:
                    log.info("received %s: draining", signal.Signals(signum).name)
                    root.start_soon(_exit_on_second_signal, signals)
                    break
                # From now on every answer closes its connection: no client is left holding
                # a kept-alive connection that the server closes under its next request.
                hypercorn.keep_alive_max_requests = 0
                await _drain(config, daemon, observers, delivery, http_stopped)
                # The server answers what it accepted before anything is cancelled (cancelling
                # at once cut answers off mid-body: resets for the clients).
                with trio.move_on_after(LATE_REQUEST_GRACE + hypercorn.graceful_timeout + 1.0):
                    await http_done.wait()
                root.cancel_scope.cancel()
            finally:
                remove_run_file(config.run_file)


async def _gauges(
    config: Config, board: SqliteBoardReads, feed: ChangeFeed, reaper: Reaper
) -> Gauges:
    database = await database_gauges(config.database_path)
    last = reaper.last_report
    return Gauges(
        sessions=session_counts(
            (card.status, card.zone) for card in map(build_card, await board.card_facts(None))
        ),
        outbox_backlog=database.outbox_backlog,
        outbox_oldest_age_seconds=database.outbox_oldest_age_seconds,
        change_log_rows=database.change_log_rows,
        change_log_oldest_seq=database.change_log_oldest_seq,
        database_bytes=database.database_bytes,
        wal_bytes=database.wal_bytes,
        sse_subscribers=feed.subscriber_count,
        reaper_sweeps=reaper.sweeps,
        reaper_last_sweep_seconds=0.0 if last is None else last.duration,
    )


async def _serve_metrics(
    config: Config, metrics: Metrics, *, task_status: trio.TaskStatus[Sequence[str]]
) -> None:
    """``/metrics`` without a token on the loopback ``metrics.address``."""
    bind = HypercornConfig()
    bind.bind = [config.metrics.address]
    bind.accesslog = None
    bind.errorlog = logging.getLogger("hypercorn.error")
    app = cast("ASGIFramework", metrics_app(metrics))
    await serve(app, bind, task_status=task_status)


def _dashboard(
    config: Config,
    store: SqliteStore,
    board: SqliteBoardReads,
    auth: TokenAuthority,
    clock: Clock,
    runtime: TmuxRuntime,
    pr_actions: PRActions,
) -> DashboardServices:
    """The web dashboard: reads and sign-in, the terminal peek over the runtime, and the
    notification marks and merges the JSON API uses."""
    agents = dict.fromkeys((config.default_agent, *config.agents, *BUILTIN_AGENTS))
    return DashboardServices(
        reads=board,
        store=store,
        browser=BrowserAuth(auth.token, clock),
        agents=tuple(agents),
        tmux_socket=str(tmux_socket_path(config.data_dir)),
        allowed_hosts=allowed_hosts(config.host),
        panes=RuntimePaneCapture(runtime),
        notifications=StoreNotificationActions(store),
        merger=PRActionsMerger(pr_actions),
    )


async def _exit_on_second_signal(signals: AsyncIterator[int]) -> None:
    async for signum in signals:
        log.warning("received %s again: exiting at once", signal.Signals(signum).name)
        os._exit(1)


async def _drain(
    config: Config,
    daemon: Daemon,
    observers: trio.CancelScope,
    delivery: trio.CancelScope,
    http_stopped: trio.Event,
) -> None:
    """In order, under one deadline: stop intake, stop observers, finish queued turns, flush
    the writer, give delivery what time is left, end streams, stop HTTP. Nothing
    acknowledged is lost: what is left undelivered stays in the outbox for the next start."""
    deadline = trio.current_time() + config.shutdown.drain_timeout.total_seconds()
    daemon.drain.begin()  # new requests get 503
    observers.cancel()
    with trio.move_on_at(deadline) as turns:
        await daemon.manager.close()
        await daemon.store.flush()
    if turns.cancelled_caught:
        log.warning("drain: queued turns did not finish before the deadline")
    with trio.move_on_at(deadline) as outbox:
        await daemon.dispatcher.drain()
    if outbox.cancelled_caught:
        log.warning("drain: undelivered reactions stay queued for the next start")
    delivery.cancel()
    daemon.feed.close()  # ends SSE streams before hypercorn waits on them
    http_stopped.set()
    log.info("drained")


def _host_port(binds: Sequence[str]) -> str:
    """``http://127.0.0.1:8731`` → ``127.0.0.1:8731`` (the first bind)."""
    return binds[0].split("://", 1)[-1]


class _CleanFormatter(logging.Formatter):
    """Log lines pass the one sanitiser: they quote agents' output, CI logs and review
    text, and an escape sequence in them must not act on the terminal reading the log."""

    def format(self, record: logging.LogRecord) -> str:
        return clean_text(super().format(record))


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CleanFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def run_daemon(config: Config) -> int:
    """Run in the foreground until stopped; the process exit code."""
    configure_logging()
    try:
        trio.run(serve_daemon, config)
    except OrchestratorError as error:
        # A refusal (a damaged database, a second daemon on the data dir) is one line in the
        # form of every CLI error (orchestrator.cli.console.fail), no traceback: a
        # background ``start`` finds it in the log and shows it alone.
        sys.stderr.write(f"error: {clean_text(str(error))}\n")
        return 1
    return 0


__all__ = [
    "Daemon",
    "GitHubParts",
    "build_github",
    "build_notifier",
    "build_reaper",
    "build_scm_observer",
    "keep_data_dir_private",
    "reconcile_at_boot",
    "run_daemon",
    "serve_daemon",
    "tmux_socket_path",
    "token_authority",
    "tune_gc",
]
