"""Spinning nodes: one SingleThreadedExecutor per node, each on a thread of its own.

Why not rclpy's MultiThreadedExecutor: in rclpy Jazzy its loop yields again every task it has
handed to the thread pool until a pool thread starts it, so while pool threads wait for the GIL
the loop spins and takes the GIL from them. With /clock coming at 40-100 Hz in bag replay,
callbacks of the depth node then ran up to 1.5 s late and its depth-1 camera subscription lost
0 to 3 of 5 frames (measured; ``test_eval_replay`` now requires every frame). Our nodes keep
callbacks short and do heavy work on ``worker.WakeableWorker`` threads, so one executor thread
per node is enough, and nodes in one process never delay each other.
"""

import functools
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from avs_net_ros.ros.lifecycle import (bring_down, bring_up, declare_autostart, is_lifecycle,
                                       LifecycleError)
from avs_net_ros.runtime.memory import keep_freed_memory
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


class NodeSpinner:
    """Spin each added node on its own SingleThreadedExecutor thread until removed."""

    def __init__(self, context: Any = None) -> None:
        """Spin nodes of ``context`` (rclpy's default context when None)."""
        self.context = context
        self._spinning: Dict[Node, Tuple[SingleThreadedExecutor, threading.Thread]] = {}
        self.errors: List[BaseException] = []

    def add(self, node: Node) -> Node:
        """Start spinning ``node``; return it."""
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(node)
        thread = threading.Thread(target=self._spin, args=(executor,),
                                  name=f'spin {node.get_name()}', daemon=True)
        self._spinning[node] = (executor, thread)
        thread.start()
        return node

    def _spin(self, executor: SingleThreadedExecutor) -> None:
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception as e:  # noqa: B902 - kept for ``alive`` and the caller's log
            if not (self.context or rclpy.get_default_context()).ok():
                return  # Ctrl-C shut the context down under a callback that was publishing
            self.errors.append(e)
            raise

    def remove(self, node: Node, timeout: float = 10.0) -> None:
        """Stop spinning ``node`` (its callbacks finish first), then destroy it."""
        executor, thread = self._spinning.pop(node)
        executor.shutdown(timeout_sec=timeout)
        thread.join(timeout)
        node.destroy_node()

    def alive(self) -> bool:
        """Whether every node is still being spun."""
        return all(t.is_alive() for _, t in self._spinning.values())

    def shutdown(self) -> None:
        """Remove every node, last added first."""
        for node in reversed(list(self._spinning)):
            self.remove(node)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def init_process(args: Optional[List[str]] = None) -> None:
    """``rclpy.init`` for a process that spins nodes with ``spin_nodes`` until a signal.

    rclpy's own signal handlers are left out. On SIGINT they trigger every executor's guard
    condition from a thread of their own while the main thread destroys those executors; that
    race crashed bringup with SIGSEGV ("rcl_trigger_guard_condition() failed: guard condition
    implementation is invalid") in CI. Here SIGINT and SIGTERM raise KeyboardInterrupt in the
    main thread, and ``spin_nodes`` stops the executors and destroys the nodes in order.
    """
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)


def spin_nodes(nodes: List[Node], context: Any = None,
               start: Optional[Callable[[], None]] = None) -> None:
    """Spin ``nodes`` until Ctrl-C or the context shuts down, then stop and destroy them.

    ``start`` runs in this thread once the nodes spin (bringup configures and activates its
    lifecycle nodes there, so their lifecycle services answer while models load); an
    exception from it stops everything and is raised. On the way out, lifecycle nodes are
    taken down in reverse order (deactivate, cleanup, shutdown: ``lifecycle.bring_down``)
    while still spinning, so observers see the transitions; then the executors stop and the
    nodes are destroyed. An exception that ended a node's spin thread is raised again once
    all nodes are destroyed.
    """
    spinner = NodeSpinner(context)
    ctx = context or rclpy.get_default_context()
    try:
        for node in nodes:
            spinner.add(node)
        if start is not None:
            start()
        while ctx.ok() and spinner.alive():
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        try:
            for node in reversed(nodes):
                if is_lifecycle(node) and ctx.ok():
                    try:
                        bring_down(node)
                    except Exception as e:  # noqa: B902 - e.g. stopped inside a transition
                        node.get_logger().warning(f'orderly shutdown failed ({e}); '
                                                  'destroying the node')
        finally:
            spinner.shutdown()
    if spinner.errors:
        raise spinner.errors[0]


def run_node(factory: Callable[[], Node], name: str, args: Optional[List[str]],
             startup_errors: Tuple[type, ...] = (FileNotFoundError, ValueError)) -> int:
    """Run one node as a process: init, build, spin until shutdown; the ``main()`` of a node.

    A lifecycle node is configured and activated here when its ``autostart`` parameter is
    true (the default; ``lifecycle.AUTOSTART``); a failed transition is logged as fatal with
    its reason and 1 is returned, so ``ros2 run`` shows why it exited. With
    ``autostart:=false`` it stays unconfigured, alive, for a lifecycle manager. A node that
    cannot even be built (one of ``startup_errors``) is logged as fatal and 1 returned.
    """
    keep_freed_memory()  # image-sized temporaries: see runtime.memory
    init_process(args)
    try:
        node = factory()
    except startup_errors as e:
        rclpy.logging.get_logger(name).fatal(f'cannot start: {e}')
        rclpy.try_shutdown()
        return 1
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return 0
    start = functools.partial(bring_up, node) if (is_lifecycle(node)
                                                  and declare_autostart(node)) else None
    try:
        spin_nodes([node], start=start)
    except LifecycleError as e:
        rclpy.logging.get_logger(name).fatal(f'cannot start: {e}')
        rclpy.try_shutdown()
        return 1
    rclpy.try_shutdown()
    return 0
