"""Data types, DDL parsing and Row, checked against what PySpark 3.5 gives.

Expected values are written from PySpark's documented behaviour (its doctests and
``jsonValue()`` output), not from this package's output.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from ferrostream.errors import (
    AnalysisException,
    ParseException,
    PySparkException,
    PySparkTypeError,
    PySparkValueError,
)
from ferrostream.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    NullType,
    Row,
    ShortType,
    StringType,
    StructField,
    StructType,
    TimestampType,
    _parse_datatype_string,
    to_datatype,
)


def field(name: str, data_type: Any, nullable: bool = True, **metadata: Any) -> dict[str, Any]:
    """One field of a struct in Spark's JSON form."""
    return {"name": name, "type": data_type, "nullable": nullable, "metadata": metadata}


def struct(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "struct", "fields": list(fields)}


# -- simple types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data_type", "type_name", "simple", "json_value", "text"),
    [
        (StringType(), "string", "string", "string", "StringType()"),
        (DoubleType(), "double", "double", "double", "DoubleType()"),
        (FloatType(), "float", "float", "float", "FloatType()"),
        (LongType(), "long", "bigint", "long", "LongType()"),
        (IntegerType(), "integer", "int", "integer", "IntegerType()"),
        (ShortType(), "short", "smallint", "short", "ShortType()"),
        (ByteType(), "byte", "tinyint", "byte", "ByteType()"),
        (BooleanType(), "boolean", "boolean", "boolean", "BooleanType()"),
        (BinaryType(), "binary", "binary", "binary", "BinaryType()"),
        (TimestampType(), "timestamp", "timestamp", "timestamp", "TimestampType()"),
        (DateType(), "date", "date", "date", "DateType()"),
        (NullType(), "null", "void", "null", "NullType()"),
        (DecimalType(10, 2), "decimal", "decimal(10,2)", "decimal(10,2)", "DecimalType(10,2)"),
    ],
)
def test_simple_types(
    data_type: DataType, type_name: str, simple: str, json_value: str, text: str
) -> None:
    assert data_type.typeName() == type_name
    assert data_type.simpleString() == simple
    assert data_type.jsonValue() == json_value
    assert data_type.json() == json.dumps(json_value)
    assert repr(data_type) == text


def test_decimal_defaults_to_ten_digits_no_scale() -> None:
    assert DecimalType() == DecimalType(10, 0)
    assert DecimalType().jsonValue() == "decimal(10,0)"
    assert DecimalType(10, 2) != DecimalType(10, 3)


def test_equality_and_hash_follow_values() -> None:
    assert StringType() == StringType()
    assert StringType() != IntegerType()
    assert hash(StringType()) == hash(StringType())
    assert ArrayType(StringType()) == ArrayType(StringType(), True)
    assert ArrayType(StringType(), False) != ArrayType(StringType())
    assert MapType(StringType(), IntegerType()) == MapType(StringType(), IntegerType(), True)
    assert MapType(StringType(), IntegerType(), False) != MapType(StringType(), FloatType())
    assert len({LongType(), LongType(), DoubleType()}) == 2


# -- complex types ----------------------------------------------------------------------------


def test_array_type() -> None:
    array = ArrayType(IntegerType(), False)
    assert array.simpleString() == "array<int>"
    assert array.jsonValue() == {"type": "array", "elementType": "integer", "containsNull": False}
    assert repr(array) == "ArrayType(IntegerType(), False)"
    assert ArrayType.fromJson(array.jsonValue()) == array


def test_map_type() -> None:
    mapping = MapType(StringType(), ArrayType(DoubleType()))
    assert mapping.simpleString() == "map<string,array<double>>"
    assert mapping.jsonValue() == {
        "type": "map",
        "keyType": "string",
        "valueType": {"type": "array", "elementType": "double", "containsNull": True},
        "valueContainsNull": True,
    }
    assert repr(mapping) == "MapType(StringType(), ArrayType(DoubleType(), True), True)"
    assert MapType.fromJson(mapping.jsonValue()) == mapping


def test_struct_field() -> None:
    price = StructField("price", DoubleType(), False, {"unit": "USD"})
    assert repr(price) == "StructField('price', DoubleType(), False)"
    assert price.simpleString() == "price:double"
    assert price.jsonValue() == field("price", "double", False, unit="USD")
    assert StructField.fromJson(price.jsonValue()) == price
    assert StructField("a", StringType()).metadata == {}
    with pytest.raises(PySparkTypeError, match="typeName"):
        price.typeName()


def test_struct_type_shape() -> None:
    schema = StructType(
        [StructField("symbol", StringType(), True), StructField("price", DoubleType(), False)]
    )
    assert repr(schema) == (
        "StructType([StructField('symbol', StringType(), True), "
        "StructField('price', DoubleType(), False)])"
    )
    assert schema.simpleString() == "struct<symbol:string,price:double>"
    assert schema.typeName() == "struct"
    assert schema.names == ["symbol", "price"]
    assert schema.fieldNames() == ["symbol", "price"]
    assert len(schema) == 2
    assert [f.name for f in schema] == ["symbol", "price"]
    assert schema["price"] == StructField("price", DoubleType(), False)
    assert schema[0].name == "symbol"
    assert schema[-1].name == "price"
    assert schema[1:] == StructType([StructField("price", DoubleType(), False)])
    assert schema.jsonValue() == struct(field("symbol", "string"), field("price", "double", False))


def test_struct_type_json_text_is_compact_and_sorted() -> None:
    schema = StructType([StructField("a", IntegerType())])
    assert schema.json() == (
        '{"fields":[{"metadata":{},"name":"a","nullable":true,"type":"integer"}],"type":"struct"}'
    )


def test_struct_type_lookup_errors() -> None:
    schema = StructType([StructField("a", StringType())])
    with pytest.raises(KeyError, match="No StructField named b"):
        schema["b"]
    with pytest.raises(IndexError, match="StructType index out of range"):
        schema[3]
    with pytest.raises(PySparkTypeError, match="`key`"):
        schema[1.5]  # type: ignore[call-overload]


def test_struct_type_add() -> None:
    by_type = StructType().add("f1", StringType(), True).add("f2", StringType(), True, None)
    by_field = StructType(
        [StructField("f1", StringType(), True), StructField("f2", StringType(), True, None)]
    )
    assert by_type == by_field
    assert StructType().add(StructField("f1", StringType())) == StructType(
        [StructField("f1", StringType())]
    )
    # A type name in Spark's JSON form (as PySpark takes) or in DDL.
    ddl = StructType().add("id", "long", False).add("n", "int").add("d", "decimal(5,2)")
    assert ddl == StructType(
        [
            StructField("id", LongType(), False),
            StructField("n", IntegerType()),
            StructField("d", DecimalType(5, 2)),
        ]
    )
    assert ddl.names == ["id", "n", "d"]


def test_struct_type_add_needs_a_type() -> None:
    with pytest.raises(PySparkValueError, match="data_type"):
        StructType().add("f1")  # type: ignore[call-overload]
    with pytest.raises(PySparkTypeError, match="should be a list of StructField"):
        StructType(["a"])  # type: ignore[list-item]


def test_struct_equality_sees_nullability_and_metadata() -> None:
    one = StructType([StructField("f1", StringType(), True)])
    assert one == StructType([StructField("f1", StringType(), True)])
    assert one != StructType([StructField("f1", StringType(), False)])
    assert one != StructType([StructField("f1", StringType(), True, {"comment": "x"})])
    assert hash(one) == hash(StructType([StructField("f1", StringType(), True)]))


def test_nested_struct_round_trips_through_json() -> None:
    schema = StructType(
        [
            StructField("symbol", StringType(), False),
            StructField(
                "quote",
                StructType(
                    [
                        StructField("bid", DecimalType(18, 8)),
                        StructField("tags", ArrayType(StringType(), False)),
                        StructField("sizes", MapType(StringType(), LongType(), False)),
                    ]
                ),
            ),
            StructField("at", TimestampType(), True, {"comment": "event time"}),
            StructField("day", DateType()),
            StructField("raw", BinaryType()),
            StructField("flag", BooleanType()),
            StructField("nothing", NullType()),
        ]
    )
    assert StructType.fromJson(schema.jsonValue()) == schema
    assert StructType.fromJson(json.loads(schema.json())) == schema
    assert to_datatype(schema.json()) == schema


def test_reads_the_void_name_spark_writes_for_null() -> None:
    assert to_datatype("void") == NullType()
    assert to_datatype(struct(field("x", "void"))) == StructType([StructField("x", NullType())])


# -- DDL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        (
            "symbol STRING, price DOUBLE",
            struct(field("symbol", "string"), field("price", "double")),
        ),
        (
            "symbol: string, price: double",
            struct(field("symbol", "string"), field("price", "double")),
        ),
        (
            "struct<a:int,b:array<string>>",
            struct(
                field("a", "integer"),
                field("b", {"type": "array", "elementType": "string", "containsNull": True}),
            ),
        ),
        ("a INT NOT NULL", struct(field("a", "integer", False))),
        (
            "a int not null, b string",
            struct(field("a", "integer", False), field("b", "string")),
        ),
        (
            "`first name` STRING, `a``b` INT, `x.y` LONG",
            struct(field("first name", "string"), field("a`b", "integer"), field("x.y", "long")),
        ),
        ("price decimal(10,2)", struct(field("price", "decimal(10,2)"))),
        ("n bigint, m long", struct(field("n", "long"), field("m", "long"))),
        ("n int, m integer", struct(field("n", "integer"), field("m", "integer"))),
        (
            "t tinyint, b byte, s smallint, h short",
            struct(
                field("t", "byte"), field("b", "byte"), field("s", "short"), field("h", "short")
            ),
        ),
        ("f float, r real", struct(field("f", "float"), field("r", "float"))),
        (
            "m map<string,int>",
            struct(
                field(
                    "m",
                    {
                        "type": "map",
                        "keyType": "string",
                        "valueType": "integer",
                        "valueContainsNull": True,
                    },
                )
            ),
        ),
        (
            "Price DOUBLE, Ts TimeStamp, D DATE, B Boolean, Raw BINARY",
            struct(
                field("Price", "double"),
                field("Ts", "timestamp"),
                field("D", "date"),
                field("B", "boolean"),
                field("Raw", "binary"),
            ),
        ),
        # Spark keeps a column comment in the field's metadata.
        ("a INT COMMENT 'the id'", struct(field("a", "integer", comment="the id"))),
        # PySpark's own doctests of _parse_datatype_string.
        (
            "a: byte, b: decimal(  16 , 8   ) ",
            struct(field("a", "byte"), field("b", "decimal(16,8)")),
        ),
        (
            "a DOUBLE, b STRING",
            struct(field("a", "double"), field("b", "string")),
        ),
        (
            "a: array< short>",
            struct(field("a", {"type": "array", "elementType": "short", "containsNull": True})),
        ),
        (
            "date date, timestamp timestamp",
            struct(field("date", "date"), field("timestamp", "timestamp")),
        ),
    ],
)
def test_ddl_schemas(ddl: str, expected: dict[str, Any]) -> None:
    assert _parse_datatype_string(ddl).jsonValue() == expected


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        ("int ", IntegerType()),
        ("INT ", IntegerType()),
        ("integer", IntegerType()),
        ("bigint", LongType()),
        ("long", LongType()),
        ("string", StringType()),
        ("timestamp", TimestampType()),
        ("decimal(10,2)", DecimalType(10, 2)),
        ("decimal", DecimalType(10, 0)),
        ("DEC(5)", DecimalType(5, 0)),
        ("numeric(38, 18)", DecimalType(38, 18)),
        ("void", NullType()),
        ("varchar(10)", StringType()),
        (" map<string , string > ", MapType(StringType(), StringType(), True)),
        ("MAP<STRING, INT>", MapType(StringType(), IntegerType())),
        ("array<array<long>>", ArrayType(ArrayType(LongType()))),
        ("Array<Struct<x: double>>", ArrayType(StructType([StructField("x", DoubleType())]))),
        ("struct<>", StructType()),
        ("", StructType()),
    ],
)
def test_ddl_single_types(ddl: str, expected: DataType) -> None:
    assert _parse_datatype_string(ddl) == expected


def test_ddl_comment_escapes_and_nested_not_null() -> None:
    parsed = _parse_datatype_string(
        r"a STRING COMMENT 'it\'s', b: struct<c: int not null comment 'inner'>"
    )
    assert parsed.jsonValue() == struct(
        field("a", "string", comment="it's"),
        field("b", struct(field("c", "integer", False, comment="inner"))),
    )


def test_ddl_keeps_names_case_and_reads_keywords_in_any_case() -> None:
    parsed = _parse_datatype_string("SyMbOl sTrInG")
    assert parsed == StructType([StructField("SyMbOl", StringType())])


@pytest.mark.parametrize(
    ("ddl", "where"),
    [
        ("blabla", "pos 6"),
        ("a: int,", "pos 7"),
        ("array<int", "pos 9"),
        ("map<int, boolean>>", "pos 17"),
        ("a blabla", "'blabla'"),
        ("a int not nul", "'nul'"),
        ("a-b int", "backquotes"),
        ("a int, `b string", "Unclosed backquoted name"),
        # '' is no escape in Spark: 'it' and 's' are two strings.
        ("a INT NOT NULL COMMENT 'it''s', b STRING", "pos 27"),
        ("a int comment", "COMMENT"),
        ("decimal(40,2)", "precision 40"),
        ("decimal(5,6)", "scale (6) cannot be greater than precision (5)"),
        ("int(5)", "'int(5)'"),
        ("a char", "CHAR needs a length"),
        ("timestamp_ntz", "TIMESTAMP_NTZ"),
        ("a int, b ~", "'~'"),
        ("struct<a int", "'>'"),
        ("a int b string", "pos 6"),
    ],
)
def test_bad_ddl_raises_parse_exception(ddl: str, where: str) -> None:
    with pytest.raises(ParseException) as caught:
        _parse_datatype_string(ddl)
    message = str(caught.value)
    assert where in message
    assert ddl.split("\n")[0] in message  # the offending text is quoted under "== SQL =="
    assert isinstance(caught.value, AnalysisException)
    assert isinstance(caught.value, PySparkException)


def test_parse_error_points_at_the_position() -> None:
    with pytest.raises(ParseException) as caught:
        _parse_datatype_string("array<int")
    assert str(caught.value).endswith("== SQL ==\narray<int\n---------^^^")


def test_parse_error_on_second_line_counts_lines() -> None:
    with pytest.raises(ParseException, match=r"line 2, pos 3"):
        _parse_datatype_string("a int,\nb  ~")


def test_parse_needs_a_string() -> None:
    with pytest.raises(PySparkTypeError, match="`s` should be a str, got int"):
        _parse_datatype_string(5)  # type: ignore[arg-type]


# -- to_datatype ------------------------------------------------------------------------------


def test_to_datatype_accepts_types_ddl_and_json() -> None:
    schema = StructType([StructField("a", IntegerType())])
    assert to_datatype(schema) is schema
    assert to_datatype("a INT") == schema
    assert to_datatype("a: int") == schema
    assert to_datatype(struct(field("a", "integer"))) == schema
    assert to_datatype(json.dumps(struct(field("a", "integer")))) == schema
    assert to_datatype("integer") == IntegerType()
    assert to_datatype("null") == NullType()
    assert to_datatype("decimal(12,4)") == DecimalType(12, 4)
    assert to_datatype({"type": "array", "elementType": "long", "containsNull": False}) == (
        ArrayType(LongType(), False)
    )


def test_to_datatype_errors() -> None:
    with pytest.raises(PySparkTypeError, match="should be a DataType, str or dict, got int"):
        to_datatype(3)  # type: ignore[arg-type]
    with pytest.raises(PySparkValueError, match="UNSUPPORTED_DATA_TYPE"):
        to_datatype({"type": "udt"})
    with pytest.raises(PySparkValueError, match="missing key"):
        to_datatype({"type": "array"})
    with pytest.raises(PySparkValueError, match="CANNOT_PARSE_DATATYPE"):
        to_datatype("{not json")
    with pytest.raises(ParseException):
        to_datatype("money")


# -- Row --------------------------------------------------------------------------------------


def test_row_by_keyword() -> None:
    row = Row(name="Alice", age=11)
    assert tuple(row) == ("Alice", 11)
    assert row.name == "Alice"
    assert row["age"] == 11
    assert row[0] == "Alice"
    assert row[-1] == 11
    assert "name" in row
    assert "Alice" not in row
    assert repr(row) == "Row(name='Alice', age=11)"
    assert row.asDict() == {"name": "Alice", "age": 11}


def test_row_as_dict_recursive() -> None:
    row = Row(key=1, value=Row(name="a", age=2), items=[Row(x=1)], m={"k": Row(y=2)})
    assert row.asDict() == {
        "key": 1,
        "value": Row(name="a", age=2),
        "items": [Row(x=1)],
        "m": {"k": Row(y=2)},
    }
    assert row.asDict(True) == {
        "key": 1,
        "value": {"name": "a", "age": 2},
        "items": [{"x": 1}],
        "m": {"k": {"y": 2}},
    }


def test_row_class() -> None:
    person = Row("name", "age")
    assert repr(person) == "<Row('name', 'age')>"
    assert "name" in person
    alice = person("Alice", 11)
    assert alice == Row(name="Alice", age=11)
    assert alice.age == 11
    with pytest.raises(PySparkValueError, match="Expected 2 values"):
        person("Alice", 11, "extra")
    with pytest.raises(PySparkTypeError, match="Cannot convert a Row class into dict"):
        person.asDict()


def test_row_errors() -> None:
    row = Row(a=1)
    with pytest.raises(AttributeError):
        row.b  # noqa: B018
    with pytest.raises(ValueError):
        row["b"]
    with pytest.raises(RuntimeError, match="read-only"):
        row.a = 2
    with pytest.raises(PySparkValueError):
        Row(1, a=2)


def test_row_pickles_with_its_fields() -> None:
    row = Row(symbol="BTC", price=1.5)
    copy = pickle.loads(pickle.dumps(row))
    assert copy == row
    assert copy.symbol == "BTC"
    assert copy.asDict() == {"symbol": "BTC", "price": 1.5}
