"""ansible.builtin.validate_argument_spec, fed with one managed host's variables.

The validation play runs on the control node (localhost) so that no managed host
is contacted. The builtin action takes the values to check from the task's own
variables, which are localhost's: not the managed host's, and in an inventory such
as the sandbox's some of them cannot even be templated there (`inventory_dir` is
undefined for the implicit localhost). This action is the builtin one with one
change: the values come from `hostvars[host]`, each templated in that host's own
context.

Differences from the builtin action, each on purpose:

- A value that cannot be templated yet, because a variable it uses is undefined
  on the control node (facts, which are gathered only once the host is contacted,
  or a vault value that is missing), is skipped here and reported under
  `deferred`. The validation play's own rules catch a required one that is missing
  (the secret key, the admin keys); the role checks the rest against the same spec
  when it runs.
- Defaults are dropped from the spec: only what the inventory, the wiring or
  `-e` sets is checked here. A default belongs to the role and may be a template
  that only makes sense inside it (`role_path`, facts).
- `required` is dropped too: a required input may come from the play that runs
  the role, not from the inventory.
- `strict_types` (default true): a `bool`, `list` or `dict` option must already
  have that type. The builtin validator converts the string "false" to False for
  its check, but the role then reads the string, which is true in Jinja and
  "Conditionals must have a boolean result" in a `when:`; `-e name=false` always
  gives a string.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleError, AnsibleUndefinedVariable
from ansible.plugins.action.validate_argument_spec import ActionModule as ValidateArgumentSpec

# The JSON form of `-e` keeps a value's type; key=value always gives a string.
_EXAMPLE = {"bool": "false", "list": '["a", "b"]', "dict": '{"NAME": "value"}'}
_STRICT_TYPES = {"bool": bool, "list": (list, tuple), "dict": dict}
_KINDS = {"bool": "boolean", "list": "list", "dict": "mapping"}


class ActionModule(ValidateArgumentSpec):
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        host = self._task.args.get("host")
        spec = self._task.args.get("argument_spec")
        if not isinstance(host, str) or host not in task_vars.get("hostvars", {}):
            raise AnsibleError(f"host must name a host of the inventory, got {host!r}")
        if not isinstance(spec, dict):
            raise AnsibleError(f"argument_spec must be a dict, got {type(spec).__name__}")
        self._host_vars = task_vars["hostvars"][host]
        self._deferred: list[str] = []
        self._broken: list[str] = []
        # The builtin action reads argument_spec and provided_arguments from the
        # task's arguments: hand it the trimmed spec and nothing else.
        trimmed = {name: _without(option, ("default", "required")) for name, option in spec.items()}
        self._task.args = {"argument_spec": trimmed, "provided_arguments": {},
                           "validate_args_context": self._task.args.get("validate_args_context", {})}
        result = super().run(tmp, task_vars)
        result["deferred"] = self._deferred
        errors = list(result.get("argument_errors", [])) + self._broken
        if self._task.args.get("strict_types", True) is not False:
            errors += self._strict_type_errors(trimmed)
        if errors:
            result["failed"] = True
            result["argument_errors"] = errors
            result["msg"] = f"Invalid settings for {host}:\n" + "\n".join(errors)
            result.pop("argument_spec_data", None)
        return result

    def get_args_from_task_vars(self, argument_spec: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        self._values: dict[str, t.Any] = {}
        for name in argument_spec:
            if name not in self._host_vars:
                continue
            try:
                self._values[name] = self._host_vars[name]
            except AnsibleUndefinedVariable:
                self._deferred.append(name)
            except AnsibleError as error:
                self._broken.append(f"{name} cannot be evaluated: {error.message}")
        return dict(self._values)

    def _strict_type_errors(self, spec: dict[str, t.Any]) -> list[str]:
        errors = []
        for name, option in spec.items():
            wanted = option.get("type")
            if name not in self._values or wanted not in _STRICT_TYPES:
                continue
            value = self._values[name]
            if not isinstance(value, _STRICT_TYPES[wanted]):
                errors.append(
                    f"{name} must be a {_KINDS[wanted]}, not the {_kind(value)} {_shown(value, option)}: "
                    f"in YAML write {name}: {_EXAMPLE[wanted]}, and on the command line "
                    f"""-e '{{"{name}": {_EXAMPLE[wanted]}}}' (-e {name}=... always gives a string)."""
                )
        return errors


def _without(option: dict[str, t.Any], keys: tuple[str, ...]) -> dict[str, t.Any]:
    trimmed = {key: value for key, value in option.items() if key not in keys}
    if isinstance(trimmed.get("options"), dict):
        trimmed["options"] = {name: _without(sub, keys) for name, sub in trimmed["options"].items()}
    return trimmed


def _kind(value: t.Any) -> str:
    for kind, types in (("boolean", bool), ("number", (int, float)), ("string", str), ("mapping", dict), ("list", (list, tuple))):
        if isinstance(value, types):
            return kind
    return "null" if value is None else type(value).__name__


def _shown(value: t.Any, option: dict[str, t.Any]) -> str:
    if option.get("no_log"):
        return "(value hidden)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
