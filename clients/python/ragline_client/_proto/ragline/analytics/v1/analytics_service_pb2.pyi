import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Granularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANULARITY_UNSPECIFIED: _ClassVar[Granularity]
    GRANULARITY_HOUR: _ClassVar[Granularity]
    GRANULARITY_DAY: _ClassVar[Granularity]
GRANULARITY_UNSPECIFIED: Granularity
GRANULARITY_HOUR: Granularity
GRANULARITY_DAY: Granularity

class GetUsageRequest(_message.Message):
    __slots__ = ("tenant", "start_time", "end_time", "granularity")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    granularity: Granularity
    def __init__(self, tenant: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granularity: _Optional[_Union[Granularity, str]] = ...) -> None: ...

class UsageStats(_message.Message):
    __slots__ = ("requests", "errors", "tokens_in", "tokens_out", "cost_usd", "cache_lookups", "cache_hits", "cache_hit_rate", "duration_ms", "p95_latency_ms")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    CACHE_LOOKUPS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    requests: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cache_lookups: int
    cache_hits: int
    cache_hit_rate: float
    duration_ms: int
    p95_latency_ms: float
    def __init__(self, requests: _Optional[int] = ..., errors: _Optional[int] = ..., tokens_in: _Optional[int] = ..., tokens_out: _Optional[int] = ..., cost_usd: _Optional[float] = ..., cache_lookups: _Optional[int] = ..., cache_hits: _Optional[int] = ..., cache_hit_rate: _Optional[float] = ..., duration_ms: _Optional[int] = ..., p95_latency_ms: _Optional[float] = ...) -> None: ...

class EndpointUsage(_message.Message):
    __slots__ = ("endpoint", "stats")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    stats: UsageStats
    def __init__(self, endpoint: _Optional[str] = ..., stats: _Optional[_Union[UsageStats, _Mapping]] = ...) -> None: ...

class PeriodUsage(_message.Message):
    __slots__ = ("start_time", "stats")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    stats: UsageStats
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stats: _Optional[_Union[UsageStats, _Mapping]] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("tenant", "start_time", "end_time", "total", "endpoints", "series", "spend_cap", "keys")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    SPEND_CAP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    total: UsageStats
    endpoints: _containers.RepeatedCompositeFieldContainer[EndpointUsage]
    series: _containers.RepeatedCompositeFieldContainer[PeriodUsage]
    spend_cap: SpendCap
    keys: _containers.RepeatedCompositeFieldContainer[KeyUsage]
    def __init__(self, tenant: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total: _Optional[_Union[UsageStats, _Mapping]] = ..., endpoints: _Optional[_Iterable[_Union[EndpointUsage, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[PeriodUsage, _Mapping]]] = ..., spend_cap: _Optional[_Union[SpendCap, _Mapping]] = ..., keys: _Optional[_Iterable[_Union[KeyUsage, _Mapping]]] = ...) -> None: ...

class KeyUsage(_message.Message):
    __slots__ = ("key_id", "stats")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    stats: UsageStats
    def __init__(self, key_id: _Optional[str] = ..., stats: _Optional[_Union[UsageStats, _Mapping]] = ...) -> None: ...

class SpendCap(_message.Message):
    __slots__ = ("daily_cap_usd", "spent_today_usd", "reset_time", "known")
    DAILY_CAP_USD_FIELD_NUMBER: _ClassVar[int]
    SPENT_TODAY_USD_FIELD_NUMBER: _ClassVar[int]
    RESET_TIME_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    daily_cap_usd: float
    spent_today_usd: float
    reset_time: _timestamp_pb2.Timestamp
    known: bool
    def __init__(self, daily_cap_usd: _Optional[float] = ..., spent_today_usd: _Optional[float] = ..., reset_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., known: _Optional[bool] = ...) -> None: ...
