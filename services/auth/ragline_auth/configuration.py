"""GET /api/v1/configuration: what each service reported of its settings at start-up
(ragline_core.effective_config, already redacted there) and the rate-limit tiers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ragline_core import rate_limits
from ragline_core.effective_config import COLLECTION, Setting
from ragline_core.system import SERVICES


@dataclass(frozen=True)
class ServiceConfiguration:
    service: str
    instance: str
    version: str
    reported_at: datetime | None
    settings: tuple[Setting, ...]


@dataclass(frozen=True)
class Configuration:
    services: tuple[ServiceConfiguration, ...]
    rate_limit_tiers: dict[str, dict[str, int]]


class ConfigurationReader:
    def __init__(self, db: Any, rate_limit_scale: int) -> None:
        self.collection = db[COLLECTION]
        self.rate_limit_scale = rate_limit_scale

    async def read(self) -> Configuration:
        found = []
        for service in SERVICES:  # one _id lookup each (FerretDB indexes only _id)
            doc = await self.collection.find_one({"_id": service})
            if doc is None:
                continue  # not started since this was built: the page lists what reported
            found.append(
                ServiceConfiguration(
                    service=service,
                    instance=str(doc.get("instance", "")),
                    version=str(doc.get("version", "")),
                    reported_at=doc.get("reported_at"),
                    settings=tuple(
                        Setting(str(s["name"]), str(s["value"]), bool(s["redacted"]))
                        for s in doc.get("settings", [])
                    ),
                )
            )
        return Configuration(tuple(found), rate_limits.effective(self.rate_limit_scale))
