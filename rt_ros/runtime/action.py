"""One decoded action: each dimension's value in its profile's units, its tokens, its mode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rt_ros.runtime.action_space import MODE_ROLE, ROLES, ActionSpace
from rt_ros.runtime.errors import ConfigError


@dataclass(frozen=True)
class Action:
    """An immutable decoded action.

    `values` holds every dimension by name in profile order (a discrete one holds its integer
    value as a float), `tokens` each dimension's bin or value in the same order, `labels` the label
    of each discrete dimension and `roles` the name of the dimension playing each role it has.
    """

    values: Mapping[str, float]
    tokens: tuple[int, ...]
    labels: Mapping[str, str]
    roles: Mapping[str, str]

    def __post_init__(self) -> None:
        values = MappingProxyType({name: float(value) for name, value in self.values.items()})
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "tokens", tuple(int(token) for token in self.tokens))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "roles", MappingProxyType(dict(self.roles)))
        if len(self.tokens) != len(values):
            raise ValueError(f"Action: {len(self.tokens)} tokens for {len(values)} values")
        for what, names in (("labels", self.labels.keys()), ("roles", self.roles.values())):
            unknown = sorted(set(names) - set(values))
            if unknown:
                raise ValueError(f"Action: {what} name dimensions without a value: {unknown}")
        mode = self.roles.get(MODE_ROLE)
        if mode is not None and mode not in self.labels:
            raise ValueError(f"Action: the mode dimension {mode!r} has no label")

    @classmethod
    def from_space(
        cls,
        space: ActionSpace,
        values: Mapping[str, float],
        tokens: tuple[int, ...],
        labels: Mapping[str, str],
    ) -> Action:
        """An action of `space`, taking the role of each dimension from the profile."""
        roles = {dim.role: dim.name for dim in space.dimensions}
        return cls(values=values, tokens=tokens, labels=labels, roles=roles)

    @property
    def mode(self) -> str | None:
        """The mode label (arm, base, terminate); None when the profile has no mode dimension."""
        name = self.roles.get(MODE_ROLE)
        return None if name is None else self.labels[name]

    def role(self, role: str, default: float = 0.0) -> float:
        """Value of the dimension playing `role`; `default` when the profile has none."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        name = self.roles.get(role)
        return default if name is None else self.values[name]
