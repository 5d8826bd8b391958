"""Lifecycle (managed) nodes: driving them in-process, and watching them over DDS.

``depth_inference`` and ``chirp_emitter`` are ``rclpy.lifecycle.LifecycleNode``s (REP 2002 /
ros2 design "managed nodes"): unconfigured after construction, models or audio loaded by
``configure`` (inactive), subscribed and publishing after ``activate`` (active).

- In-process owners (``bringup``, the node's own ``main()`` via ``spin.run_node``, tests) use
  ``bring_up`` / ``bring_down``.
- Other processes (replay, the demo, tests, ``ros2 lifecycle``) use ``LifecycleClient``: the
  node's ``<node>/get_state`` and ``<node>/change_state`` services (lifecycle_msgs). Readiness
  is a node's state over DDS, never a log line.
"""

import threading
import time
from typing import Any, Callable, Dict, Iterable, Optional

from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

#: The standalone process's parameter (read by ``spin.run_node`` only; launch sets it false
#: and drives the node itself, bringup drives its nodes in-process).
AUTOSTART = 'autostart'
AUTOSTART_DESCRIPTION = (
    'Standalone process (ros2 run) only: configure and activate this lifecycle node at start; '
    'false leaves it unconfigured for a lifecycle manager (ros2 lifecycle set, launch). A '
    'failed configure with autostart ends the process with status 1.')

UNCONFIGURED = 'unconfigured'
INACTIVE = 'inactive'
ACTIVE = 'active'
FINALIZED = 'finalized'

#: Transition labels, as ``ros2 lifecycle set`` spells them (valid from some states each).
TRANSITIONS = ('configure', 'activate', 'deactivate', 'cleanup', 'shutdown')
SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
ERROR = TransitionCallbackReturn.ERROR


class LifecycleError(RuntimeError):
    """A transition failed; the message names the node, the transition and the reason."""


def is_lifecycle(node: Any) -> bool:
    """Whether ``node`` is a managed (lifecycle) node."""
    return isinstance(node, LifecycleNode)


def state_of(node: LifecycleNode) -> str:
    """Return the current state label of an in-process lifecycle node."""
    return node._state_machine.current_state[1]  # rclpy has no public getter (Jazzy)


def declare_autostart(node: LifecycleNode) -> bool:
    """Declare the ``autostart`` parameter on ``node`` (if not yet) and return its value."""
    if not node.has_parameter(AUTOSTART):
        node.declare_parameter(AUTOSTART, True, ParameterDescriptor(
            description=AUTOSTART_DESCRIPTION, read_only=True))
    return bool(node.get_parameter(AUTOSTART).value)


def bring_up(node: LifecycleNode) -> None:
    """Configure, then activate ``node`` (in this process; the calling thread does the work).

    Raises:
        LifecycleError: a transition did not succeed; the node's own reason (see
            ``LifecycleMixin.failure``) is in the message.

    """
    for name, trigger, want in (('configure', node.trigger_configure, INACTIVE),
                                ('activate', node.trigger_activate, ACTIVE)):
        result = trigger()
        if result != SUCCESS or state_of(node) != want:
            reason = getattr(node, 'failure', '') or f'returned {result.to_label()}'
            raise LifecycleError(f'{node.get_fully_qualified_name()}: {name} failed '
                                 f'({reason}); the node is {state_of(node)}')


def bring_down(node: LifecycleNode) -> None:
    """Take ``node`` to finalized in order: deactivate, cleanup, shutdown (from any state)."""
    if state_of(node) == ACTIVE:
        node.trigger_deactivate()
    if state_of(node) == INACTIVE:
        node.trigger_cleanup()
    if state_of(node) not in (FINALIZED,):
        node.trigger_shutdown()


class LifecycleMixin:
    """Logging, error handling and reporting shared by the package's lifecycle nodes.

    A node implements ``_configure`` (raise one of ``configure_errors`` for a clear FAILURE),
    ``_activate``, ``_deactivate`` and ``_release`` (undo configure; must work on a partly
    configured node). Unexpected exceptions in a transition are logged with their type and
    turned into ERROR, after which ``on_error`` releases everything and returns the node to
    unconfigured. ``failure`` holds the reason of the last failed transition ('' after a
    successful configure), for diagnostics.
    """

    configure_errors: tuple = (ValueError, OSError)
    failure = ''

    def _guard(self, name: str, step: Callable[[], None],
               expected: tuple = ()) -> TransitionCallbackReturn:
        try:
            step()
        except expected as e:
            self.failure = f'{name} failed: {e}'
            self.get_logger().error(self.failure)
            return FAILURE
        except Exception as e:  # noqa: B902 - reported, then on_error cleans up
            self.failure = f'{name} failed: {type(e).__name__}: {e}'
            self.get_logger().error(self.failure)
            return ERROR
        return SUCCESS

    def on_configure(self, state: Any) -> TransitionCallbackReturn:
        """Load what the node needs (models, audio); FAILURE with the reason if it cannot."""
        def step() -> None:
            try:
                self._configure()
            except BaseException:
                self._release()
                raise
        result = self._guard('configure', step, self.configure_errors)
        if result == SUCCESS:
            self.failure = ''
            result = super().on_configure(state)
            self.get_logger().info('configured (inactive)')
        return result

    def on_activate(self, state: Any) -> TransitionCallbackReturn:
        """Subscribe and enable the lifecycle publishers."""
        result = super().on_activate(state)
        if result == SUCCESS:
            result = self._guard('activate', self._activate)
        if result == SUCCESS:
            self.get_logger().info('activated')
        return result

    def on_deactivate(self, state: Any) -> TransitionCallbackReturn:
        """Unsubscribe and disable the lifecycle publishers (nothing is published inactive)."""
        result = self._guard('deactivate', self._deactivate)
        if result == SUCCESS:
            result = super().on_deactivate(state)
            self.get_logger().info('deactivated')
        return result

    def on_cleanup(self, state: Any) -> TransitionCallbackReturn:
        """Release what configure loaded."""
        result = self._guard('cleanup', self._release)
        if result == SUCCESS:
            self.get_logger().info('cleaned up (unconfigured)')
        return result

    def on_shutdown(self, state: Any) -> TransitionCallbackReturn:
        """Stop from any primary state: unsubscribe and release."""
        self._deactivate()
        self._release()
        self.get_logger().info('shut down (finalized)')
        return SUCCESS

    def on_error(self, state: Any) -> TransitionCallbackReturn:
        """After an unexpected failure: release everything and go back to unconfigured."""
        self.get_logger().error(f'error while leaving {state.label}: {self.failure or "?"}; '
                                'releasing everything (unconfigured)')
        try:
            self._deactivate()
            self._release()
        except Exception as e:  # noqa: B902 - a node that cannot release must finalize
            self.get_logger().fatal(f'releasing after the error failed: {e}')
            return FAILURE
        return SUCCESS


class LifecycleClient:
    """Query and change other nodes' lifecycle states over DDS from ``node``."""

    def __init__(self, node: Any) -> None:
        """Use ``node`` (spun by someone else) for the service clients."""
        self.node = node
        self._clients: Dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def _client(self, srv: Any, target: str, service: str) -> Any:
        name = f'{target.rstrip("/")}/{service}'
        with self._lock:
            if (srv, name) not in self._clients:
                self._clients[(srv, name)] = self.node.create_client(srv, name)
            return self._clients[(srv, name)]

    def _call(self, client: Any, request: Any, timeout: float) -> Any:
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            client.remove_pending_request(future)
            return None
        return future.result()

    def get_state(self, target: str, timeout: float = 5.0) -> Optional[str]:
        """Return ``target``'s state label (e.g. '/depth_inference'), None if no answer."""
        resp = self._call(self._client(GetState, target, 'get_state'), GetState.Request(),
                          timeout)
        return None if resp is None else resp.current_state.label

    def change_state(self, target: str, transition: str, timeout: float = 60.0) -> bool:
        """Ask ``target`` for ``transition`` (one of ``TRANSITIONS``); return its success.

        Raises:
            LifecycleError: the service did not answer within ``timeout``.

        """
        if transition not in TRANSITIONS:
            raise ValueError(f'unknown transition {transition!r}; one of {TRANSITIONS}')
        request = ChangeState.Request()
        request.transition.label = transition  # the node maps it from its current state
        resp = self._call(self._client(ChangeState, target, 'change_state'), request, timeout)
        if resp is None:
            raise LifecycleError(f'{target}/change_state did not answer {transition} within '
                                 f'{timeout:g} s')
        return bool(resp.success)

    def wait_for_state(self, targets: Iterable[str], state: str, timeout: float,
                       alive: Callable[[], None] = lambda: None) -> None:
        """Poll ``targets`` until each is in ``state``.

        ``alive()`` may raise to abort (e.g. the process running the nodes exited).

        Raises:
            LifecycleError: not every target reached ``state`` within ``timeout``; the
                message gives each target's last state.

        """
        deadline = time.monotonic() + timeout
        last: Dict[str, Optional[str]] = dict.fromkeys(targets)
        while True:
            alive()
            for t in last:
                if last[t] != state:
                    last[t] = self.get_state(t, timeout=min(2.0, max(0.1, deadline
                                                                     - time.monotonic())))
            if all(s == state for s in last.values()):
                return
            if time.monotonic() > deadline:
                raise LifecycleError(f'not {state} within {timeout:g} s: ' + ', '.join(
                    f'{t} is {s or "not answering"}' for t, s in last.items()))
            time.sleep(0.1)
