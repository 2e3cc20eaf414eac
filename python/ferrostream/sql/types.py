"""Spark SQL data types and ``Row``, shaped like ``pyspark.sql.types``.

A type's ``jsonValue()`` is the form the Rust core reads (``docs/plan-format.md``): simple
types are strings (``"string"``, ``"decimal(10,2)"``), complex types are objects.
``_parse_datatype_string`` reads Spark DDL (``"symbol STRING, price DOUBLE"``) the way
PySpark does, without a JVM.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, final, overload

from ferrostream.errors import ParseException, PySparkTypeError, PySparkValueError

__all__ = [
    "ArrayType",
    "BinaryType",
    "BooleanType",
    "ByteType",
    "DataType",
    "DateType",
    "DecimalType",
    "DoubleType",
    "FloatType",
    "IntegerType",
    "LongType",
    "MapType",
    "NullType",
    "Row",
    "ShortType",
    "StringType",
    "StructField",
    "StructType",
    "TimestampType",
    "to_datatype",
]


class DataType:
    """Base class for data types."""

    def __repr__(self) -> str:
        return self.__class__.__name__ + "()"

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.__class__) and self.__dict__ == other.__dict__

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    @classmethod
    def typeName(cls) -> str:
        """The type's name in Spark's JSON form, e.g. ``"integer"`` for IntegerType."""
        return cls.__name__[:-4].lower()

    def simpleString(self) -> str:
        """The type's name in Spark DDL, e.g. ``"int"`` for IntegerType."""
        return self.typeName()

    def jsonValue(self) -> Any:
        """The type as a JSON-compatible value, as Spark writes it."""
        return self.typeName()

    def json(self) -> str:
        """The type as compact JSON text with sorted keys."""
        return json.dumps(self.jsonValue(), separators=(",", ":"), sort_keys=True)

    def needConversion(self) -> bool:
        """Whether values need converting between Python and Spark's internal form."""
        return False


class AtomicType(DataType):
    """A type that is not null, an array, a map or a struct."""


class NumericType(AtomicType):
    """Numeric data types."""


class IntegralType(NumericType):
    """Integral data types."""


class FractionalType(NumericType):
    """Fractional data types."""


class NullType(DataType):
    """Null type: the type of ``None`` literals and of values that cannot be inferred.

    Spark 3.5 names it ``"void"``; the plan format writes ``"null"``, and both are read.
    """

    def simpleString(self) -> str:
        return "void"


class StringType(AtomicType):
    """String data type."""


class BinaryType(AtomicType):
    """Binary (byte array) data type."""


class BooleanType(AtomicType):
    """Boolean data type."""


class DateType(AtomicType):
    """Date (``datetime.date``) data type."""


class TimestampType(AtomicType):
    """Timestamp (``datetime.datetime``) data type: microseconds, shown in UTC."""


class DecimalType(FractionalType):
    """Decimal (``decimal.Decimal``) data type with fixed precision and scale.

    ``precision`` is the total number of digits (at most 38), ``scale`` the number of
    digits right of the dot; ``DecimalType(5, 2)`` holds -999.99 to 999.99.

    >>> DecimalType(10, 2).jsonValue()
    'decimal(10,2)'
    """

    def __init__(self, precision: int = 10, scale: int = 0) -> None:
        self.precision = precision
        self.scale = scale
        self.hasPrecisionInfo = True

    def simpleString(self) -> str:
        return f"decimal({self.precision:d},{self.scale:d})"

    def jsonValue(self) -> str:
        return f"decimal({self.precision:d},{self.scale:d})"

    def __repr__(self) -> str:
        return f"DecimalType({self.precision:d},{self.scale:d})"


class DoubleType(FractionalType):
    """Double data type: 64-bit floats."""


class FloatType(FractionalType):
    """Float data type: 32-bit floats."""


class ByteType(IntegralType):
    """Byte data type: signed 8-bit integers."""

    def simpleString(self) -> str:
        return "tinyint"


class ShortType(IntegralType):
    """Short data type: signed 16-bit integers."""

    def simpleString(self) -> str:
        return "smallint"


class IntegerType(IntegralType):
    """Int data type: signed 32-bit integers."""

    def simpleString(self) -> str:
        return "int"


class LongType(IntegralType):
    """Long data type: signed 64-bit integers."""

    def simpleString(self) -> str:
        return "bigint"


class ArrayType(DataType):
    """Array data type.

    >>> ArrayType(StringType()).jsonValue()
    {'type': 'array', 'elementType': 'string', 'containsNull': True}
    """

    def __init__(self, elementType: DataType, containsNull: bool = True) -> None:
        _check_datatype(elementType, "elementType")
        self.elementType = elementType
        self.containsNull = containsNull

    def simpleString(self) -> str:
        return f"array<{self.elementType.simpleString()}>"

    def __repr__(self) -> str:
        return f"ArrayType({self.elementType}, {self.containsNull})"

    def jsonValue(self) -> dict[str, Any]:
        return {
            "type": self.typeName(),
            "elementType": self.elementType.jsonValue(),
            "containsNull": self.containsNull,
        }

    @classmethod
    def fromJson(cls, json: dict[str, Any]) -> ArrayType:
        """Builds the type from its ``jsonValue()``."""
        return ArrayType(
            _parse_datatype_json_value(json["elementType"]), json.get("containsNull", True)
        )

    def needConversion(self) -> bool:
        return self.elementType.needConversion()


class MapType(DataType):
    """Map data type; keys are never null.

    >>> MapType(StringType(), IntegerType()).simpleString()
    'map<string,int>'
    """

    def __init__(
        self, keyType: DataType, valueType: DataType, valueContainsNull: bool = True
    ) -> None:
        _check_datatype(keyType, "keyType")
        _check_datatype(valueType, "valueType")
        self.keyType = keyType
        self.valueType = valueType
        self.valueContainsNull = valueContainsNull

    def simpleString(self) -> str:
        return f"map<{self.keyType.simpleString()},{self.valueType.simpleString()}>"

    def __repr__(self) -> str:
        return f"MapType({self.keyType}, {self.valueType}, {self.valueContainsNull})"

    def jsonValue(self) -> dict[str, Any]:
        return {
            "type": self.typeName(),
            "keyType": self.keyType.jsonValue(),
            "valueType": self.valueType.jsonValue(),
            "valueContainsNull": self.valueContainsNull,
        }

    @classmethod
    def fromJson(cls, json: dict[str, Any]) -> MapType:
        """Builds the type from its ``jsonValue()``."""
        return MapType(
            _parse_datatype_json_value(json["keyType"]),
            _parse_datatype_json_value(json["valueType"]),
            json.get("valueContainsNull", True),
        )

    def needConversion(self) -> bool:
        return self.keyType.needConversion() or self.valueType.needConversion()


class StructField(DataType):
    """A named field of a :class:`StructType`.

    >>> StructField("price", DoubleType(), False)
    StructField('price', DoubleType(), False)
    """

    def __init__(
        self,
        name: str,
        dataType: DataType,
        nullable: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise PySparkTypeError(
                f"[NOT_STR] Argument `name` should be a str, got {type(name).__name__}."
            )
        _check_datatype(dataType, "dataType")
        self.name = name
        self.dataType = dataType
        self.nullable = nullable
        self.metadata: dict[str, Any] = metadata or {}

    def simpleString(self) -> str:
        return f"{self.name}:{self.dataType.simpleString()}"

    def __repr__(self) -> str:
        return f"StructField('{self.name}', {self.dataType}, {self.nullable})"

    def jsonValue(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.dataType.jsonValue(),
            "nullable": self.nullable,
            "metadata": self.metadata,
        }

    @classmethod
    def fromJson(cls, json: dict[str, Any]) -> StructField:
        """Builds the field from its ``jsonValue()``."""
        return StructField(
            json["name"],
            _parse_datatype_json_value(json["type"]),
            json.get("nullable", True),
            json.get("metadata"),
        )

    def needConversion(self) -> bool:
        return self.dataType.needConversion()

    @classmethod
    def typeName(cls) -> str:
        raise PySparkTypeError(
            "[INVALID_TYPENAME_CALL] StructField does not have typeName. "
            "Use typeName on its type explicitly instead."
        )


class StructType(DataType):
    """Struct type: a list of :class:`StructField`, the type of a :class:`Row`.

    Iterating a StructType yields its fields; a field can be looked up by name or position.

    >>> schema = StructType().add("symbol", "string").add("price", DoubleType(), False)
    >>> schema
    StructType([StructField('symbol', StringType(), True), StructField('price', DoubleType(), False)])
    >>> schema["price"].dataType
    DoubleType()
    >>> schema.simpleString()
    'struct<symbol:string,price:double>'
    """

    def __init__(self, fields: list[StructField] | None = None) -> None:
        if not fields:
            self.fields: list[StructField] = []
            self.names: list[str] = []
        else:
            for field in fields:
                if not isinstance(field, StructField):
                    raise PySparkTypeError(
                        "[NOT_LIST_OF_STRUCTFIELD] Argument `fields` should be a list of "
                        f"StructField, got {type(field).__name__}."
                    )
            self.fields = list(fields)
            self.names = [f.name for f in fields]

    @overload
    def add(self, field: StructField) -> StructType: ...

    @overload
    def add(
        self,
        field: str,
        data_type: str | DataType,
        nullable: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> StructType: ...

    def add(
        self,
        field: str | StructField,
        data_type: str | DataType | None = None,
        nullable: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> StructType:
        """Appends a field and returns this StructType, so calls chain.

        Takes either one :class:`StructField`, or a name and a type (a :class:`DataType`,
        a DDL type string such as ``"decimal(10,2)"`` or a JSON type name) with optional
        ``nullable`` and ``metadata``.

        >>> StructType().add("id", "bigint", False).add("tags", "array<string>").simpleString()
        'struct<id:bigint,tags:array<string>>'
        """
        if isinstance(field, StructField):
            new_field = field
        else:
            if not isinstance(field, str):
                raise PySparkTypeError(
                    "[NOT_STR_OR_STRUCT] Argument `field` should be a str or StructField, "
                    f"got {type(field).__name__}."
                )
            if data_type is None:
                raise PySparkValueError(
                    "[ARGUMENT_REQUIRED] Argument `data_type` is required when passing "
                    "name of struct_field to create."
                )
            if isinstance(data_type, str):
                data_type = _parse_type_name_or_ddl(data_type)
            new_field = StructField(field, data_type, nullable, metadata)
        self.fields.append(new_field)
        self.names.append(new_field.name)
        return self

    def __iter__(self) -> Iterator[StructField]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    @overload
    def __getitem__(self, key: str | int) -> StructField: ...

    @overload
    def __getitem__(self, key: slice) -> StructType: ...

    def __getitem__(self, key: str | int | slice) -> StructField | StructType:
        """The field with that name or at that position; a slice gives a StructType."""
        if isinstance(key, str):
            for field in self.fields:
                if field.name == key:
                    return field
            raise KeyError(f"No StructField named {key}")
        if isinstance(key, int) and not isinstance(key, bool):
            try:
                return self.fields[key]
            except IndexError:
                raise IndexError("StructType index out of range") from None
        if isinstance(key, slice):
            return StructType(self.fields[key])
        raise PySparkTypeError(
            "[NOT_INT_OR_SLICE_OR_STR] Argument `key` should be an int, slice or str, "
            f"got {type(key).__name__}."
        )

    def fieldNames(self) -> list[str]:
        """The names of the fields, in order.

        >>> StructType([StructField("a", StringType())]).fieldNames()
        ['a']
        """
        return list(self.names)

    def simpleString(self) -> str:
        fields = ",".join(f.simpleString() for f in self)
        return f"struct<{fields}>"

    def __repr__(self) -> str:
        fields = ", ".join(str(field) for field in self)
        return f"StructType([{fields}])"

    def jsonValue(self) -> dict[str, Any]:
        return {"type": self.typeName(), "fields": [f.jsonValue() for f in self]}

    @classmethod
    def fromJson(cls, json: dict[str, Any]) -> StructType:
        """Builds the type from its ``jsonValue()``.

        >>> s = StructType().add("a", "int")
        >>> StructType.fromJson(s.jsonValue()) == s
        True
        """
        return StructType([StructField.fromJson(f) for f in json["fields"]])

    def needConversion(self) -> bool:
        return True


def _check_datatype(value: object, argument: str) -> None:
    if not isinstance(value, DataType) or isinstance(value, StructField):
        raise PySparkTypeError(
            f"[NOT_DATATYPE] Argument `{argument}` should be a DataType, "
            f"got {type(value).__name__}."
        )


# -- Rows ---------------------------------------------------------------------------------


@final
class Row(tuple[Any, ...]):
    """A row of data: a tuple whose fields can also be read by name.

    ``Row(name="Alice", age=11)`` makes a row; ``Row("name", "age")`` makes a row *class*
    that is called with values to make rows.

    >>> row = Row(symbol="BTC", price=1.5)
    >>> row.price, row["symbol"], row[1]
    (1.5, 'BTC', 1.5)
    >>> row.asDict()
    {'symbol': 'BTC', 'price': 1.5}
    >>> Trade = Row("symbol", "price")
    >>> Trade("ETH", 2.0)
    Row(symbol='ETH', price=2.0)
    """

    __fields__: list[str]

    def __new__(cls, *args: Any, **kwargs: Any) -> Row:
        if args and kwargs:
            raise PySparkValueError(
                "[CANNOT_SET_TOGETHER] args and kwargs should not be set together."
            )
        if kwargs:
            row = tuple.__new__(cls, list(kwargs.values()))
            row.__fields__ = list(kwargs.keys())
            return row
        return tuple.__new__(cls, args)

    def asDict(self, recursive: bool = False) -> dict[str, Any]:
        """The row as a dict of field name to value; ``recursive`` converts nested rows too.

        >>> Row(key=1, value=Row(name="a", age=2)).asDict(True)
        {'key': 1, 'value': {'name': 'a', 'age': 2}}
        """
        if not hasattr(self, "__fields__"):
            raise PySparkTypeError("[CANNOT_CONVERT_TYPE] Cannot convert a Row class into dict.")
        if recursive:

            def convert(obj: Any) -> Any:
                if isinstance(obj, Row):
                    return obj.asDict(True)
                if isinstance(obj, list):
                    return [convert(o) for o in obj]
                if isinstance(obj, dict):
                    return {k: convert(v) for k, v in obj.items()}
                return obj

            return dict(zip(self.__fields__, (convert(o) for o in self)))
        return dict(zip(self.__fields__, self))

    def __contains__(self, item: object) -> bool:
        if hasattr(self, "__fields__"):
            return item in self.__fields__
        return super().__contains__(item)

    def __call__(self, *args: Any) -> Row:
        """Makes a row of this row class from values."""
        if len(args) > len(self):
            raise PySparkValueError(
                f"[TOO_MANY_VALUES] Expected {len(self)} values for `fields`, got {len(args)}."
            )
        return _create_row(list(self), args)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, (int, slice)):
            return super().__getitem__(item)
        try:
            idx = self.__fields__.index(item)
            return super().__getitem__(idx)
        except IndexError:
            raise KeyError(item) from None
        except ValueError:
            raise PySparkValueError(item) from None

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__"):
            raise AttributeError(item)
        try:
            idx = self.__fields__.index(item)
            return self[idx]
        except (IndexError, ValueError):
            raise AttributeError(item) from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key != "__fields__":
            raise RuntimeError("Row is read-only")
        self.__dict__[key] = value

    def __reduce__(self) -> str | tuple[Any, ...]:
        if hasattr(self, "__fields__"):
            return (_create_row, (self.__fields__, tuple(self)))
        return tuple.__reduce__(self)

    def __repr__(self) -> str:
        if hasattr(self, "__fields__"):
            pairs = ", ".join(f"{k}={v!r}" for k, v in zip(self.__fields__, tuple(self)))
            return f"Row({pairs})"
        values = ", ".join(repr(field) for field in self)
        return f"<Row({values})>"


def _create_row(fields: list[str], values: tuple[Any, ...]) -> Row:
    row = Row(*values)
    row.__fields__ = list(fields)
    return row


# -- Spark's JSON form --------------------------------------------------------------------

_ATOMIC_TYPES: dict[str, Callable[[], DataType]] = {
    "string": StringType,
    "binary": BinaryType,
    "boolean": BooleanType,
    "float": FloatType,
    "double": DoubleType,
    "byte": ByteType,
    "short": ShortType,
    "integer": IntegerType,
    "long": LongType,
    "date": DateType,
    "timestamp": TimestampType,
    "null": NullType,
    "void": NullType,
    "decimal": DecimalType,
}

_COMPLEX_TYPES: dict[str, Callable[[dict[str, Any]], DataType]] = {
    "array": ArrayType.fromJson,
    "map": MapType.fromJson,
    "struct": StructType.fromJson,
}

_FIXED_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(-?\d+)\s*\)\Z")


def _parse_datatype_json_value(json_value: Any) -> DataType:
    """Reads a type from Spark's JSON form (what ``jsonValue()`` gives)."""
    if isinstance(json_value, dict):
        type_name = json_value.get("type")
        if isinstance(type_name, str) and type_name in _COMPLEX_TYPES:
            try:
                return _COMPLEX_TYPES[type_name](json_value)
            except KeyError as missing:
                raise PySparkValueError(
                    f"[CANNOT_PARSE_DATATYPE] Unable to parse datatype {json_value!r}: "
                    f"missing key {missing}."
                ) from None
        raise PySparkValueError(
            f"[UNSUPPORTED_DATA_TYPE] Unsupported DataType `{type_name}` in {json_value!r}."
        )
    if isinstance(json_value, str):
        if json_value in _ATOMIC_TYPES:
            return _ATOMIC_TYPES[json_value]()
        match = _FIXED_DECIMAL.match(json_value)
        if match:
            return DecimalType(int(match.group(1)), int(match.group(2)))
    raise PySparkValueError(
        f"[CANNOT_PARSE_DATATYPE] Unable to parse datatype {json_value!r}: expected a Spark "
        'type name such as "string" or "decimal(10,2)", or an object with a "type" key.'
    )


def _parse_datatype_json_string(json_string: str) -> DataType:
    """Reads a type from Spark's JSON text (what ``json()`` gives)."""
    try:
        value = json.loads(json_string)
    except ValueError as error:
        raise PySparkValueError(
            f"[CANNOT_PARSE_DATATYPE] Unable to parse datatype from {json_string!r}: {error}."
        ) from None
    return _parse_datatype_json_value(value)


def to_datatype(value: DataType | str | dict[str, Any]) -> DataType:
    """A :class:`DataType` from a DataType, a DDL string or Spark's JSON form of a type.

    Strings are tried as JSON text when they start with ``{``, then as a JSON type name
    (``"integer"``, ``"null"``), then as DDL (``"a INT, b STRING"``, ``"array<string>"``).

    >>> to_datatype("symbol STRING, price DOUBLE").simpleString()
    'struct<symbol:string,price:double>'
    >>> to_datatype({"type": "array", "elementType": "long", "containsNull": False})
    ArrayType(LongType(), False)
    """
    if isinstance(value, DataType) and not isinstance(value, StructField):
        return value
    if isinstance(value, dict):
        return _parse_datatype_json_value(value)
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            return _parse_datatype_json_string(value)
        return _parse_type_name_or_ddl(value)
    raise PySparkTypeError(
        "[NOT_DATATYPE_OR_STR] Argument `schema` should be a DataType, str or dict, "
        f"got {type(value).__name__}."
    )


def _parse_type_name_or_ddl(text: str) -> DataType:
    if text in _ATOMIC_TYPES or _FIXED_DECIMAL.match(text):
        return _parse_datatype_json_value(text)
    return _parse_datatype_string(text)


# -- Spark DDL ----------------------------------------------------------------------------
#
# A recursive-descent reader of the part of Spark's SQL grammar (SqlBaseParser.g4) that
# describes types:
#
#   colTypeList        : colType (',' colType)*
#   colType            : identifier dataType (NOT NULL)? (COMMENT string)?
#   dataType           : ARRAY '<' dataType '>'
#                      | MAP '<' dataType ',' dataType '>'
#                      | STRUCT '<' complexColTypeList? '>'
#                      | primitive ('(' INTEGER (',' INTEGER)* ')')?
#   complexColTypeList : complexColType (',' complexColType)*
#   complexColType     : identifier ':'? dataType (NOT NULL)? (COMMENT string)?
#
# As in Spark, keywords are case-insensitive, names keep their case, and a column's
# COMMENT is kept in its metadata under "comment".

_MAX_DECIMAL_PRECISION = 38

_PRIMITIVE_TYPES: dict[str, Callable[[], DataType]] = {
    "boolean": BooleanType,
    "tinyint": ByteType,
    "byte": ByteType,
    "smallint": ShortType,
    "short": ShortType,
    "int": IntegerType,
    "integer": IntegerType,
    "bigint": LongType,
    "long": LongType,
    "float": FloatType,
    "real": FloatType,
    "double": DoubleType,
    "date": DateType,
    "timestamp": TimestampType,
    "timestamp_ltz": TimestampType,
    "string": StringType,
    "binary": BinaryType,
    "void": NullType,
}

# Spark's CHAR(n) and VARCHAR(n) are strings with a length check on write; the engine
# has no such check, so they read as plain strings.
_STRING_WITH_LENGTH = ("char", "character", "varchar")
_DECIMAL_NAMES = ("decimal", "dec", "numeric")

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<word>[A-Za-z0-9_]+)
    | (?P<backquoted>`(?:[^`]|``)*`)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<punct>[<>(),:])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


class _Token:
    __slots__ = ("kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind = kind
        self.text = text
        self.pos = pos


class _DDLError(Exception):
    """An error at a position of the DDL text, before it becomes a ParseException.

    ``progress`` is how far the reader got, ``known`` is true when the text was read
    correctly but names something unsupported (``decimal(40,2)``, ``timestamp_ntz``); both
    pick the most telling error among the ways PySpark tries to read a string.
    """

    def __init__(
        self, pos: int, message: str, progress: int | None = None, known: bool = False
    ) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message
        self.progress = pos if progress is None else progress
        self.known = known
        self.error_class = "UNSUPPORTED_DATATYPE" if known else "PARSE_SYNTAX_ERROR"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            if char == "`":
                raise _DDLError(pos, "Unclosed backquoted name")
            if char in "'\"":
                raise _DDLError(pos, "Unclosed string literal")
            if char == "-":
                raise _DDLError(pos, "Names with '-' must be quoted with backquotes (`a-b`)")
            raise _DDLError(pos, f"Unexpected character {char!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _unescape_string(literal: str) -> str:
    body = literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


class _DDLParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # Token helpers.

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_keyword(self, keyword: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == keyword

    def at_punct(self, punct: str) -> bool:
        token = self.peek()
        return token.kind == "punct" and token.text == punct

    def fail(self, expected: str, token: _Token | None = None) -> NoReturn:
        token = token or self.peek()
        near = "end of input" if token.kind == "end" else repr(token.text)
        raise _DDLError(token.pos, f"Syntax error at or near {near}: expected {expected}")

    def expect_punct(self, punct: str) -> None:
        if not self.at_punct(punct):
            self.fail(repr(punct))
        self.advance()

    def expect_end(self, expected: str) -> None:
        if self.peek().kind != "end":
            self.fail(expected)

    # Grammar rules.

    def col_type_list(self, colon: bool) -> list[StructField]:
        fields = [self.col_type(colon)]
        while self.at_punct(","):
            self.advance()
            fields.append(self.col_type(colon))
        return fields

    def col_type(self, colon: bool) -> StructField:
        name = self.identifier()
        if colon and self.at_punct(":"):
            self.advance()
        data_type = self.data_type()
        nullable = True
        if self.at_keyword("not"):
            self.advance()
            if not self.at_keyword("null"):
                self.fail("NULL after NOT")
            self.advance()
            nullable = False
        metadata: dict[str, Any] = {}
        if self.at_keyword("comment"):
            self.advance()
            token = self.peek()
            if token.kind != "string":
                self.fail("a quoted comment after COMMENT")
            self.advance()
            metadata["comment"] = _unescape_string(token.text)
        return StructField(name, data_type, nullable, metadata)

    def identifier(self) -> str:
        token = self.peek()
        if token.kind == "backquoted":
            self.advance()
            return token.text[1:-1].replace("``", "`")
        if token.kind == "word" and not token.text.isdigit():
            self.advance()
            return token.text
        self.fail("a field name")

    def data_type(self) -> DataType:
        token = self.peek()
        if token.kind != "word":
            self.fail("a data type")
        name = token.text.lower()
        self.advance()
        if name == "array":
            self.expect_punct("<")
            element = self.data_type()
            self.expect_punct(">")
            return ArrayType(element, True)
        if name == "map":
            self.expect_punct("<")
            key = self.data_type()
            self.expect_punct(",")
            value = self.data_type()
            self.expect_punct(">")
            return MapType(key, value, True)
        if name == "struct":
            self.expect_punct("<")
            fields: list[StructField] = []
            if not self.at_punct(">"):
                fields = self.col_type_list(colon=True)
            self.expect_punct(">")
            return StructType(fields)
        params = self.type_parameters()
        if name in _DECIMAL_NAMES:
            return self.decimal(token, params)
        if name in _STRING_WITH_LENGTH and len(params) == 1:
            return StringType()
        if name in _PRIMITIVE_TYPES and not params:
            return _PRIMITIVE_TYPES[name]()
        written = token.text + (f"({','.join(str(p) for p in params)})" if params else "")
        hint = ""
        if name in _STRING_WITH_LENGTH:
            hint = f"; {name.upper()} needs a length, e.g. {name.upper()}(10)"
        elif name in ("timestamp_ntz", "interval"):
            hint = f"; {name.upper()} types are not supported by ferrostream"
        elif name in _PRIMITIVE_TYPES:
            hint = f"; {name.upper()} takes no parameters"
        known = bool(hint)
        raise _DDLError(
            token.pos, f"Unsupported data type {written!r}{hint}", self.peek().pos, known
        )

    def type_parameters(self) -> list[int]:
        if not self.at_punct("("):
            return []
        self.advance()
        params = [self.integer()]
        while self.at_punct(","):
            self.advance()
            params.append(self.integer())
        self.expect_punct(")")
        return params

    def integer(self) -> int:
        token = self.peek()
        if token.kind != "word" or not token.text.isdigit():
            self.fail("an integer")
        self.advance()
        return int(token.text)

    def decimal(self, token: _Token, params: list[int]) -> DecimalType:
        progress = self.peek().pos
        if len(params) > 2:
            raise _DDLError(
                token.pos,
                "DECIMAL takes at most two parameters: (precision, scale)",
                progress,
                known=True,
            )
        precision = params[0] if params else 10
        scale = params[1] if len(params) > 1 else 0
        if not 1 <= precision <= _MAX_DECIMAL_PRECISION:
            raise _DDLError(
                token.pos,
                f"Decimal precision {precision} is out of range: it must be between 1 and "
                f"{_MAX_DECIMAL_PRECISION}",
                progress,
                known=True,
            )
        if scale > precision:
            raise _DDLError(
                token.pos,
                f"Decimal scale ({scale}) cannot be greater than precision ({precision})",
                progress,
                known=True,
            )
        return DecimalType(precision, scale)


def _attempt(text: str, rule: Callable[[_DDLParser], DataType]) -> DataType | _DDLError:
    try:
        parser = _DDLParser(text)
        result = rule(parser)
        parser.expect_end("end of input" if rule is _single_type else "',' or end of input")
        return result
    except _DDLError as error:
        return error


def _table_schema(parser: _DDLParser) -> DataType:
    return StructType(parser.col_type_list(colon=False))


def _single_type(parser: _DDLParser) -> DataType:
    return parser.data_type()


def _colon_fields(parser: _DDLParser) -> DataType:
    # PySpark's last resort wraps the text in "struct<...>": "a: int, b: string".
    if parser.peek().kind == "end":
        return StructType()
    return StructType(parser.col_type_list(colon=True))


def _raise_parse_error(text: str, error: _DDLError) -> NoReturn:
    line = text.count("\n", 0, error.pos) + 1
    line_start = text.rfind("\n", 0, error.pos) + 1
    column = error.pos - line_start
    source_line = text.split("\n")[line - 1] if text else ""
    raise ParseException(
        f"[{error.error_class}] {error.message} (line {line}, pos {column})\n\n"
        f"== SQL ==\n{source_line}\n{'-' * column}^^^"
    )


def _parse_datatype_string(s: str) -> DataType:
    """Parses a Spark DDL string the way PySpark's ``_parse_datatype_string`` does.

    The string is read first as a table schema (``"a INT, b STRING"``), then as one data
    type (``"int"``, ``"struct<a:int>"``, ``"map<string,int>"``), then as struct fields
    written with colons (``"a: int, b: string"``). Errors raise
    :class:`~ferrostream.errors.ParseException` naming the text and position.

    >>> _parse_datatype_string("symbol STRING, price DOUBLE NOT NULL")
    StructType([StructField('symbol', StringType(), True), StructField('price', DoubleType(), False)])
    >>> _parse_datatype_string("array<decimal(10, 2)>")
    ArrayType(DecimalType(10,2), True)
    """
    if not isinstance(s, str):
        raise PySparkTypeError(f"[NOT_STR] Argument `s` should be a str, got {type(s).__name__}.")
    errors: list[_DDLError] = []
    for rule in (_table_schema, _single_type, _colon_fields):
        result = _attempt(s, rule)
        if isinstance(result, DataType):
            return result
        errors.append(result)
    # PySpark reports the first attempt's error; the one that read furthest names the
    # mistake better ("array<int" fails at '<' as a schema but at the end as a type).
    _raise_parse_error(s, max(errors, key=lambda e: (e.progress, e.known)))


def _parse_data_type(s: str) -> DataType:
    """Parses one Spark DDL data type, as ``Column.cast("...")`` does (no field list)."""
    result = _attempt(s, _single_type)
    if isinstance(result, _DDLError):
        _raise_parse_error(s, result)
    return result
