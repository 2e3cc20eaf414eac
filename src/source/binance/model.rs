//! Binance's payloads, parsed: trades (`@trade`, `@aggTrade`, REST `historicalTrades` and
//! `aggTrades`) and 24-hour tickers (REST `/api/v3/ticker/24hr`), and the JSON ticks the
//! producer writes to Kafka. Binance sends prices and quantities as decimal strings; anything
//! missing or of the wrong type makes the message malformed (`None`), never a panic.

use serde_json::{json, Map, Value};

/// The kind of feed to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// REST `/api/v3/ticker/24hr`, polled.
    Ticker,
    /// WebSocket `<symbol>@trade`: every trade, ids contiguous per symbol.
    Trade,
    /// WebSocket `<symbol>@aggTrade`: trades of one taker order at one price, merged.
    AggTrade,
}

impl StreamKind {
    /// Parses the `stream` option (`ticker`, `trade`, `aggTrade`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "ticker" | "24hrticker" => Some(StreamKind::Ticker),
            "trade" | "trades" => Some(StreamKind::Trade),
            "aggtrade" | "aggtrades" => Some(StreamKind::AggTrade),
            _ => None,
        }
    }

    /// The WebSocket stream suffix (`btcusdt@trade`).
    pub fn stream_name(self) -> &'static str {
        match self {
            StreamKind::Ticker => "ticker",
            StreamKind::Trade => "trade",
            StreamKind::AggTrade => "aggTrade",
        }
    }
}

/// One trade (or aggregated trade).
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// The market, upper case (`BTCUSDT`).
    pub symbol: String,
    /// The trade id (the aggregate id for `aggTrade`).
    pub trade_id: i64,
    /// Price.
    pub price: f64,
    /// Quantity.
    pub qty: f64,
    /// Whether the buyer was the maker (the taker sold).
    pub is_buyer_maker: bool,
    /// When the exchange sent the event, ms since the epoch (the trade time for REST rows).
    pub event_time: i64,
    /// When the trade happened, ms since the epoch.
    pub trade_time: i64,
}

/// A 24-hour rolling ticker: the 12 fields of the tick topic's contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticker {
    /// The market.
    pub symbol: String,
    /// Last price.
    pub price: f64,
    /// Base asset volume over 24 h.
    pub volume: f64,
    /// Quote asset volume over 24 h.
    pub quote_volume: f64,
    /// Price change over 24 h.
    pub price_change: f64,
    /// Price change over 24 h, percent.
    pub price_change_percent: f64,
    /// High over 24 h.
    pub high: f64,
    /// Low over 24 h.
    pub low: f64,
    /// Open 24 h ago.
    pub open: f64,
    /// Volume-weighted average price over 24 h.
    pub weighted_avg_price: f64,
    /// Number of trades over 24 h.
    pub trade_count: i64,
    /// The exchange's time of the statistics (REST `closeTime`, WebSocket `E`), ms.
    pub event_time: i64,
}

/// A tick of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    /// A trade.
    Trade(Trade),
    /// A ticker.
    Ticker(Ticker),
}

impl Tick {
    /// The Kafka key: the symbol.
    pub fn symbol(&self) -> &str {
        match self {
            Tick::Trade(t) => &t.symbol,
            Tick::Ticker(t) => &t.symbol,
        }
    }

    /// The position of the tick in its symbol's stream: the trade id, or the ticker's time.
    pub fn sequence(&self) -> i64 {
        match self {
            Tick::Trade(t) => t.trade_id,
            Tick::Ticker(t) => t.event_time,
        }
    }

    /// The JSON value written to Kafka.
    pub fn to_json(&self) -> Value {
        match self {
            Tick::Trade(t) => json!({
                "symbol": t.symbol,
                "trade_id": t.trade_id,
                "price": t.price,
                "qty": t.qty,
                "is_buyer_maker": t.is_buyer_maker,
                "event_time": t.event_time,
                "trade_time": t.trade_time,
            }),
            Tick::Ticker(t) => json!({
                "symbol": t.symbol,
                "price": t.price,
                "volume": t.volume,
                "quote_volume": t.quote_volume,
                "price_change": t.price_change,
                "price_change_percent": t.price_change_percent,
                "high": t.high,
                "low": t.low,
                "open": t.open,
                "weighted_avg_price": t.weighted_avg_price,
                "trade_count": t.trade_count,
                "event_time": t.event_time,
            }),
        }
    }
}

impl Ticker {
    /// Whether every field but the time is the same: such a ticker is not sent again.
    pub fn same_values(&self, other: &Ticker) -> bool {
        let mut a = self.clone();
        a.event_time = other.event_time;
        a == *other
    }
}

/// A decimal that Binance sends as a string (or, in some replies, as a number).
fn number(object: &Map<String, Value>, name: &str) -> Option<f64> {
    match object.get(name)? {
        Value::String(text) => text.parse().ok().filter(|v: &f64| v.is_finite()),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn integer(object: &Map<String, Value>, name: &str) -> Option<i64> {
    match object.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn boolean(object: &Map<String, Value>, name: &str) -> Option<bool> {
    object.get(name)?.as_bool()
}

fn text(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name)?.as_str().map(str::to_ascii_uppercase)
}

/// A WebSocket event (`trade`, `aggTrade`, `24hrTicker`), bare or wrapped in a combined
/// stream's `{"stream": ..., "data": ...}`.
pub fn parse_ws_event(value: &Value) -> Option<Tick> {
    let object = value.as_object()?;
    let object = match object.get("data") {
        Some(Value::Object(data)) => data,
        _ => object,
    };
    match object.get("e")?.as_str()? {
        "trade" => Some(Tick::Trade(Trade {
            symbol: text(object, "s")?,
            trade_id: integer(object, "t")?,
            price: number(object, "p")?,
            qty: number(object, "q")?,
            is_buyer_maker: boolean(object, "m")?,
            event_time: integer(object, "E")?,
            trade_time: integer(object, "T")?,
        })),
        "aggTrade" => Some(Tick::Trade(Trade {
            symbol: text(object, "s")?,
            trade_id: integer(object, "a")?,
            price: number(object, "p")?,
            qty: number(object, "q")?,
            is_buyer_maker: boolean(object, "m")?,
            event_time: integer(object, "E")?,
            trade_time: integer(object, "T")?,
        })),
        "24hrTicker" => Some(Tick::Ticker(Ticker {
            symbol: text(object, "s")?,
            price: number(object, "c")?,
            volume: number(object, "v")?,
            quote_volume: number(object, "q")?,
            price_change: number(object, "p")?,
            price_change_percent: number(object, "P")?,
            high: number(object, "h")?,
            low: number(object, "l")?,
            open: number(object, "o")?,
            weighted_avg_price: number(object, "w")?,
            trade_count: integer(object, "n")?,
            event_time: integer(object, "E")?,
        })),
        _ => None,
    }
}

/// One REST trade row: `historicalTrades` (`id`, `price`, ...) or `aggTrades` (`a`, `p`, ...).
pub fn parse_rest_trade(symbol: &str, value: &Value) -> Option<Trade> {
    let object = value.as_object()?;
    if object.contains_key("a") {
        let time = integer(object, "T")?;
        return Some(Trade {
            symbol: symbol.to_ascii_uppercase(),
            trade_id: integer(object, "a")?,
            price: number(object, "p")?,
            qty: number(object, "q")?,
            is_buyer_maker: boolean(object, "m")?,
            event_time: time,
            trade_time: time,
        });
    }
    let time = integer(object, "time")?;
    Some(Trade {
        symbol: symbol.to_ascii_uppercase(),
        trade_id: integer(object, "id")?,
        price: number(object, "price")?,
        qty: number(object, "qty")?,
        is_buyer_maker: boolean(object, "isBuyerMaker")?,
        event_time: time,
        trade_time: time,
    })
}

/// A REST `/api/v3/ticker/24hr` object.
pub fn parse_rest_ticker(value: &Value) -> Option<Ticker> {
    let object = value.as_object()?;
    Some(Ticker {
        symbol: text(object, "symbol")?,
        price: number(object, "lastPrice")?,
        volume: number(object, "volume")?,
        quote_volume: number(object, "quoteVolume")?,
        price_change: number(object, "priceChange")?,
        price_change_percent: number(object, "priceChangePercent")?,
        high: number(object, "highPrice")?,
        low: number(object, "lowPrice")?,
        open: number(object, "openPrice")?,
        weighted_avg_price: number(object, "weightedAvgPrice")?,
        trade_count: integer(object, "count")?,
        event_time: integer(object, "closeTime")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED_TRADE: &str = r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1639351062244,
        "s":"ETHUSDT","t":705291099,"p":"4149.74000000","q":"0.43870000","b":7038593583,
        "a":7038593613,"T":1639351062243,"m":true,"M":true}}"#;

    #[test]
    fn parses_a_recorded_trade_event() {
        let value: Value = serde_json::from_str(RECORDED_TRADE).unwrap();
        let Some(Tick::Trade(trade)) = parse_ws_event(&value) else {
            panic!("not a trade")
        };
        assert_eq!(trade.symbol, "ETHUSDT");
        assert_eq!(trade.trade_id, 705291099);
        assert_eq!(trade.price, 4149.74);
        assert!(trade.is_buyer_maker);
        assert_eq!(trade.trade_time, 1639351062243);
    }

    #[test]
    fn parses_the_recorded_rest_ticker_into_the_12_fields() {
        let text = include_str!("../../../tests/data/binance_ticker_24hr.json");
        let ticker = parse_rest_ticker(&serde_json::from_str(text).unwrap()).unwrap();
        let json = Tick::Ticker(ticker).to_json();
        assert_eq!(json.as_object().map(|o| o.len()), Some(12));
        assert_eq!(json["price"], 60755.18);
        assert_eq!(json["trade_count"], 1580643);
        assert_eq!(json["event_time"], 1634944401452_i64);
    }

    #[test]
    fn wrong_types_are_malformed_not_panics() {
        for text in [
            r#"{"e":"trade","s":"X","t":"x1","p":"1","q":"1","m":true,"E":1,"T":1}"#,
            r#"{"e":"trade","s":"X","t":1,"p":"abc","q":"1","m":true,"E":1,"T":1}"#,
            r#"{"e":"trade"}"#,
            r#"[1,2]"#,
            r#"{"result":null,"id":1}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_ws_event(&value), None, "{text}");
        }
    }

    #[test]
    fn rest_rows_of_both_endpoints() {
        let agg: Value = serde_json::from_str(
            r#"{"a":966492862,"p":"60759.6","q":"0.00841","f":1,"l":1,"T":1634944096633,"m":false,"M":true}"#,
        )
        .unwrap();
        let trade: Value = serde_json::from_str(
            r#"{"id":1111471896,"price":"60814.78","qty":"0.00034","quoteQty":"20.6","time":1634943219887,"isBuyerMaker":true,"isBestMatch":true}"#,
        )
        .unwrap();
        assert_eq!(
            parse_rest_trade("btcusdt", &agg).unwrap().trade_id,
            966492862
        );
        assert_eq!(
            parse_rest_trade("btcusdt", &trade).unwrap().symbol,
            "BTCUSDT"
        );
    }
}
