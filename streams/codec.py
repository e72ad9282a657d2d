"""The one codec: records to Avro bytes and back, and JSON objects in for people.

Output is Avro single-object encoding (``C3 01``, the schema's CRC-64-AVRO
fingerprint, the body) or, when a schema registry is configured, the
Confluent wire format (``00``, a big-endian schema id, the body). Input may be
either of those, or a UTF-8 JSON object with the records' field names.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from io import BytesIO
from typing import Any, NamedTuple, Protocol, TypeVar

import pydantic
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from contracts.errors import ContractflowError, DecodeError, SchemaError, TransientError
from contracts.models import Record
from schemas import MODELS, ParsedSchema, schema_for, schema_for_fingerprint

T = TypeVar("T", bound=Record)

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = 0
_SINGLE_OBJECT_HEADER = struct.Struct("<2s8s")
_CONFLUENT_HEADER = struct.Struct(">BI")
_JSON_OPENERS = frozenset(b"{[")
_JSON_WHITESPACE = b" \t\r\n"
# Enough of a bad record to recognise it in a log line, not enough to leak it.
_PREVIEW_BYTES = 24
# A reason lists at most this many pydantic errors; the rest are counted.
_MAX_LISTED_ERRORS = 8
REGISTRY_PACKAGES = ("attrs", "authlib", "cachetools", "certifi", "httpx")


class SchemaRegistry(Protocol):
    """The two calls the codec makes on a schema registry."""

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` under ``subject`` and return its id."""
        ...

    def lookup(self, schema_id: int) -> str:
        """Return the schema text registered under ``schema_id``."""
        ...


_Convert = Callable[[Any], Any]


class _WriterSchema(NamedTuple):
    name: str
    parsed: Any
    canonical: str


class Codec:
    """Encodes records to Avro and decodes Avro or JSON into records."""

    def __init__(
        self,
        schema_registry_url: str | None = None,
        *,
        registry: SchemaRegistry | None = None,
    ) -> None:
        if registry is None and schema_registry_url:
            registry = ConfluentRegistry(schema_registry_url)
        self._registry = registry
        self._ids: dict[str, int] = {}
        self._writers: dict[int, _WriterSchema] = {}
        self._dumpers: dict[str, _Convert] = {}

    def encode(self, record: Record) -> bytes:
        """Return the Avro bytes of ``record``, framed for the configured mode."""
        schema = schema_for(type(record))
        body = _write(schema, self._dumper(schema)(record))
        if self._registry is None:
            return (
                _SINGLE_OBJECT_HEADER.pack(SINGLE_OBJECT_MARKER, schema.fingerprint)
                + body
            )
        return _CONFLUENT_HEADER.pack(CONFLUENT_MAGIC, self._schema_id(schema)) + body

    def decode(self, raw: bytes | None, model: type[T]) -> T:
        """Return the ``model`` record carried by ``raw``, Avro or JSON."""
        raw = _present(raw)
        if raw.startswith(SINGLE_OBJECT_MARKER):
            return self._decode_single_object(raw, model)
        if raw[0] == CONFLUENT_MAGIC:
            return self._decode_confluent(raw, model)
        return _validate(model, _json_object(raw))

    def decode_any(self, raw: bytes | None) -> Record | dict[str, Any]:
        """Return the record ``raw`` carries, or the plain object if it is JSON."""
        raw = _present(raw)
        if raw.startswith(SINGLE_OBJECT_MARKER):
            fingerprint = _fingerprint_of(raw)
            schema = schema_for_fingerprint(fingerprint)
            if schema is None:
                raise DecodeError(f"unknown schema fingerprint {fingerprint.hex()}")
            return self._decode_single_object(raw, schema.model)
        if raw[0] == CONFLUENT_MAGIC:
            return self._decode_confluent_any(raw)
        return _json_object(raw)

    def _decode_single_object(self, raw: bytes, model: type[T]) -> T:
        fingerprint = _fingerprint_of(raw)
        schema = schema_for(model)
        if fingerprint != schema.fingerprint:
            raise DecodeError(_fingerprint_mismatch(fingerprint, schema))
        data = _read(raw, _SINGLE_OBJECT_HEADER.size, schema.parsed)
        return _validate(model, data)

    def _decode_confluent(self, raw: bytes, model: type[T]) -> T:
        writer = self._writer_schema(_confluent_schema_id(raw))
        reader = schema_for(model)
        if writer.canonical == reader.canonical:
            data = _read(raw, _CONFLUENT_HEADER.size, reader.parsed)
        else:
            data = _read(raw, _CONFLUENT_HEADER.size, writer.parsed, reader.parsed)
        return _validate(model, data)

    def _decode_confluent_any(self, raw: bytes) -> Record | dict[str, Any]:
        writer = self._writer_schema(_confluent_schema_id(raw))
        model = MODELS.get(writer.name)
        if model is not None:
            return self._decode_confluent(raw, model)
        return _read(raw, _CONFLUENT_HEADER.size, writer.parsed)

    def _dumper(self, schema: ParsedSchema) -> _Convert:
        dumper = self._dumpers.get(schema.name)
        if dumper is None:
            dumper = self._dumpers[schema.name] = _converter(schema.parsed, {})
        return dumper

    def _schema_id(self, schema: ParsedSchema) -> int:
        schema_id = self._ids.get(schema.name)
        if schema_id is None:
            assert self._registry is not None
            # Record-name strategy: the subject follows the record, not the topic,
            # so encoding needs no topic and one record type may go anywhere.
            schema_id = self._registry.register(schema.name, schema.source)
            self._ids[schema.name] = schema_id
            self._writers[schema_id] = _WriterSchema(
                schema.name, schema.parsed, schema.canonical
            )
        return schema_id

    def _writer_schema(self, schema_id: int) -> _WriterSchema:
        writer = self._writers.get(schema_id)
        if writer is None:
            if self._registry is None:
                raise DecodeError(
                    f"Confluent wire format (schema id {schema_id}) but no schema "
                    "registry is configured (CONTRACTFLOW_SCHEMA_REGISTRY_URL)"
                )
            writer = _parse_writer(schema_id, self._registry.lookup(schema_id))
            self._writers[schema_id] = writer
        return writer


class ConfluentRegistry:
    """A SchemaRegistry backed by confluent_kafka's client, built on first use."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None

    def register(self, subject: str, schema: str) -> int:
        """Register an Avro ``schema`` under ``subject`` and return its id."""
        call = self._connected().register_schema
        from confluent_kafka.schema_registry import Schema

        return int(_ask(lambda: call(subject, Schema(schema, "AVRO")), SchemaError))

    def lookup(self, schema_id: int) -> str:
        """Return the schema text registered under ``schema_id``."""
        call = self._connected().get_schema
        return str(_ask(lambda: call(schema_id).schema_str, DecodeError))

    def _connected(self) -> Any:
        if self._client is None:
            self._client = _confluent_client(self._url)
        return self._client


def to_json(record: Record) -> dict[str, Any]:
    """Return ``record`` as a JSON-safe dict."""
    json_safe: dict[str, Any] = decoded_to_json(record.model_dump(mode="python"))
    return json_safe


def decoded_to_json(value: Any) -> Any:
    """Return ``value`` made JSON-safe: exact decimals, ISO dates, base64 bytes."""
    if isinstance(value, pydantic.BaseModel):
        return decoded_to_json(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {str(key): decoded_to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [decoded_to_json(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float):
        return value
    return _scalar_to_json(value)


def _scalar_to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _converter(schema: Any, named: dict[str, _Convert]) -> _Convert:
    """Compile a function from a model's value to the datum fastavro writes."""
    if isinstance(schema, list):
        return _union_converter(schema, named)
    if isinstance(schema, str):
        # A named type defined earlier in the file, or a primitive.
        return named.get(schema, _text if schema == "string" else _same)
    kind = schema["type"]
    if kind == "record":
        return _record_converter(schema, named)
    if kind == "array":
        return _array_converter(_converter(schema["items"], named))
    if kind == "map":
        return _map_converter(_converter(schema["values"], named))
    return _text if kind in ("string", "enum") else _same


def _record_converter(schema: dict[str, Any], named: dict[str, _Convert]) -> _Convert:
    fields: list[tuple[str, _Convert]] = []

    def convert(value: Any) -> dict[str, Any]:
        return {name: field(getattr(value, name)) for name, field in fields}

    named[schema["name"]] = convert
    fields.extend((f["name"], _converter(f["type"], named)) for f in schema["fields"])
    return convert


def _union_converter(branches: list[Any], named: dict[str, _Convert]) -> _Convert:
    others = [branch for branch in branches if branch != "null"]
    if len(others) != 1:
        return _python_value
    only = others[0]
    name = only.get("name") if isinstance(only, dict) else only
    convert = _converter(only, named)
    if name not in named:
        return lambda value: None if value is None else convert(value)
    # fastavro picks a union branch by validating the whole value against each
    # one; naming the branch (its tuple notation) spares that, twice as fast.
    return lambda value: None if value is None else (name, convert(value))


def _array_converter(item: _Convert) -> _Convert:
    return lambda values: [item(value) for value in values]


def _map_converter(item: _Convert) -> _Convert:
    return lambda values: {key: item(value) for key, value in values.items()}


def _text(value: Any) -> Any:
    # An enum member is a str subclass, which fastavro writes on a slower path.
    return value if type(value) is str else str(value)


def _same(value: Any) -> Any:
    return value


def _python_value(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="python")
    return value


def _present(raw: bytes | None) -> bytes:
    if raw is None:
        raise DecodeError("no value: the record is a tombstone (null)")
    if not raw:
        raise DecodeError("empty value: zero bytes")
    return bytes(raw)


def _write(schema: ParsedSchema, datum: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    try:
        schemaless_writer(buffer, schema.parsed, datum)
    except (ValueError, TypeError, OverflowError) as exc:
        # The models are looser than Avro here and there: a rate with more
        # than four decimal places, an int beyond 64 bits.
        raise SchemaError(f"{schema.name} does not fit its Avro schema: {exc}") from exc
    return buffer.getvalue()


def _read(raw: bytes, start: int, writer: Any, reader: Any = None) -> dict[str, Any]:
    buffer = BytesIO(raw)
    buffer.seek(start)
    try:
        data = schemaless_reader(buffer, writer, reader)
    except Exception as exc:
        # fastavro reports bad bytes with whatever the failing step raised
        # (EOFError, ValueError, UnicodeDecodeError, IndexError, ...).
        raise DecodeError(f"bad Avro body: {type(exc).__name__}: {exc}") from exc
    if buffer.tell() != len(raw):
        raise DecodeError(f"{len(raw) - buffer.tell()} bytes left after the Avro body")
    if not isinstance(data, dict):
        raise DecodeError("the Avro body is not a record")
    return data


def _fingerprint_of(raw: bytes) -> bytes:
    if len(raw) < _SINGLE_OBJECT_HEADER.size:
        raise DecodeError(f"truncated single-object Avro header: {_preview(raw)}")
    _, fingerprint = _SINGLE_OBJECT_HEADER.unpack_from(raw)
    return bytes(fingerprint)


def _confluent_schema_id(raw: bytes) -> int:
    if len(raw) < _CONFLUENT_HEADER.size:
        raise DecodeError(f"truncated Confluent wire header: {_preview(raw)}")
    _, schema_id = _CONFLUENT_HEADER.unpack_from(raw)
    return int(schema_id)


def _fingerprint_mismatch(fingerprint: bytes, expected: ParsedSchema) -> str:
    other = schema_for_fingerprint(fingerprint)
    found = f" ({other.name})" if other is not None else " (unknown schema)"
    return (
        f"schema fingerprint {fingerprint.hex()}{found} is not that of "
        f"{expected.name} ({expected.fingerprint.hex()})"
    )


def _parse_writer(schema_id: int, text: str) -> _WriterSchema:
    try:
        parsed = parse_schema(json.loads(text), named_schemas={})
        canonical = to_parsing_canonical_form(parsed)
    except Exception as exc:
        # The registry's text is foreign input too: a bad schema is a bad record.
        raise DecodeError(f"schema id {schema_id} is not usable Avro: {exc}") from exc
    name = parsed.get("name", "") if isinstance(parsed, dict) else ""
    return _WriterSchema(str(name), parsed, canonical)


def _json_object(raw: bytes) -> dict[str, Any]:
    stripped = raw.lstrip(_JSON_WHITESPACE)
    if not stripped or stripped[0] not in _JSON_OPENERS:
        raise DecodeError(f"not Avro or JSON: {_preview(raw)}")
    try:
        # Floats stay floats, so that money sent as a JSON number is refused.
        value = json.loads(stripped.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"not Avro or JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SchemaError(f"expected a JSON object, got a JSON {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    return "array" if isinstance(value, list) else type(value).__name__


def _validate(model: type[T], data: dict[str, Any]) -> T:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise SchemaError(f"not a valid {model.__name__}: {_explain(exc)}") from exc


def _explain(exc: pydantic.ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    listed = [_describe(error) for error in errors[:_MAX_LISTED_ERRORS]]
    if len(errors) > _MAX_LISTED_ERRORS:
        listed.append(f"and {len(errors) - _MAX_LISTED_ERRORS} more")
    return "; ".join(listed)


def _describe(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(record)"
    return f"{path}: {error['msg']}"


def _preview(raw: bytes) -> str:
    shown = raw[:_PREVIEW_BYTES].hex(" ")
    more = f" … ({len(raw)} bytes)" if len(raw) > _PREVIEW_BYTES else ""
    return f"{shown}{more}"


def _confluent_client(url: str) -> Any:
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient
    except ImportError as exc:
        raise ImportError(
            "a schema registry needs confluent-kafka[schemaregistry]; missing: "
            f"{exc.name} (it needs {', '.join(REGISTRY_PACKAGES)})"
        ) from exc
    return SchemaRegistryClient({"url": url})


def _ask(call: Callable[[], Any], refused: type[ContractflowError]) -> Any:
    try:
        return call()
    except Exception as exc:
        status = getattr(exc, "http_status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            raise refused(f"schema registry refused: {exc}") from exc
        raise TransientError(f"schema registry unreachable: {exc}") from exc
