"""Ansible's linear strategy, run through Mitogen when Mitogen is installed.

Mitogen keeps one Python interpreter per host alive for the whole run instead of
sending and starting a module over SSH (or `docker exec`) for every task: a no-op
site.yml on the sandbox took half the time (README, "Figures"). The control node's
requirements (requirements-dev.txt) pin it. Without it, Ansible's own linear
strategy runs the same playbooks, slower, after one warning.
"""

from __future__ import annotations

from ansible.utils.display import Display

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError:
    from ansible.plugins.strategy.linear import StrategyModule as _Linear

    Display().warning(
        "Mitogen is not installed: running Ansible's plain linear strategy (slower). "
        "pip install the mitogen version pinned in requirements-dev.txt to speed runs up."
    )

    class StrategyModule(_Linear):
        pass

else:
    # Plays on the control node itself (Molecule's create and destroy, tasks
    # delegated to localhost) keep Ansible's own local connection: under Mitogen's,
    # async_status never found the jobs of Molecule's destroy playbook and waited
    # out all its retries.
    ansible_mitogen.strategy.REDIRECTED_CONNECTION_PLUGINS = tuple(
        name for name in ansible_mitogen.strategy.REDIRECTED_CONNECTION_PLUGINS if name != "local"
    )

    class StrategyModule(
        ansible_mitogen.strategy.StrategyMixin,
        ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True),
    ):
        pass
