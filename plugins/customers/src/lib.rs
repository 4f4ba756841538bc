//! Customers: per-customer running totals, the seed's per-customer state case.
//!
//! Orders are JSON, `{"customer": "c1", "amount": 12.5}`. State is kept per
//! record key, so orders must be keyed by customer before they are
//! aggregated: `customer_key` does that (then write them to a topic keyed by
//! customer, so each customer's orders meet in one task). `add_order` folds
//! orders into a running total; `largest_order` keeps the largest order;
//! `add_refund` takes refunds off the same total (cogrouped with orders).
//!
//! Users are JSON too, `{"name": "Ada", "age": 36, "region": "eu"}`, read as
//! a table keyed by user id: `is_adult` and `user_name` are a table's filter
//! and map-values, `region_of` groups users by region, and `add_age` /
//! `subtract_age` keep a region's total age as users join, move and leave.
//! `enrich_order` (a processor) adds the customer's name from the global
//! table store `customer-names`.

use eddy_sdk::{Context, Error, Json, OwnedRecord, Plugin, Record, Registry, Result, Store};
use serde::{Deserialize, Serialize};

/// One order.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Order {
    /// Customer id.
    pub customer: String,
    /// Order amount.
    pub amount: f64,
}

/// A customer's running total.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Total {
    /// Orders so far.
    pub orders: u64,
    /// Sum of their amounts.
    pub total: f64,
}

/// The total after one more order.
pub fn add(total: Total, order: &Order) -> Total {
    Total { orders: total.orders + 1, total: total.total + order.amount }
}

/// A customer's stored total, or a fresh one before their first order.
fn stored_total(current: Option<&[u8]>) -> Result<Total> {
    match current {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| Error::failed(format!("stored total: {e}"))),
        None => Ok(Total::default()),
    }
}

fn add_order(current: Option<&[u8]>, rec: &Record) -> Result<Json<Total>> {
    let order: Order = rec.json()?;
    if order.amount < 0.0 {
        return Err(Error::invalid(format!("negative amount {}", order.amount)));
    }
    let total = stored_total(current)?;
    Ok(Json(add(total, &order)))
}

fn add_refund(current: Option<&[u8]>, rec: &Record) -> Result<Json<Total>> {
    let refund: Order = rec.json()?;
    let total = stored_total(current)?;
    Ok(Json(Total { total: total.total - refund.amount, ..total }))
}

fn largest_order(current: &[u8], rec: &Record) -> Result<Vec<u8>> {
    let best: Order = serde_json::from_slice(current).map_err(|e| Error::failed(format!("stored order: {e}")))?;
    let order: Order = rec.json()?;
    Ok(if order.amount > best.amount { rec.value().unwrap_or_default().to_vec() } else { current.to_vec() })
}

fn customer_key(rec: &Record) -> Result<String> {
    Ok(rec.json::<Order>()?.customer)
}

/// A user, as the users table holds it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct User {
    /// Display name.
    pub name: String,
    /// Age in years.
    pub age: u32,
    /// Where the user lives.
    pub region: String,
}

fn age_sum(current: Option<&[u8]>) -> Result<i64> {
    match current {
        Some(bytes) => std::str::from_utf8(bytes)?.parse().map_err(|e| Error::failed(format!("stored sum: {e}"))),
        None => Ok(0),
    }
}

fn add_age(current: Option<&[u8]>, rec: &Record) -> Result<String> {
    Ok((age_sum(current)? + i64::from(rec.json::<User>()?.age)).to_string())
}

fn subtract_age(current: Option<&[u8]>, rec: &Record) -> Result<String> {
    Ok((age_sum(current)? - i64::from(rec.json::<User>()?.age)).to_string())
}

/// An order with its customer's name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct NamedOrder {
    /// Customer id.
    pub customer: String,
    /// The customer's name, if the global table knows it.
    pub name: Option<String>,
    /// Order amount.
    pub amount: f64,
}

fn enrich_order(rec: &Record, ctx: &mut Context) -> Result<()> {
    let order: Order = rec.json()?;
    let names = Store::open("customer-names")?;
    let name = match names.get(order.customer.as_bytes()) {
        Some(bytes) => Some(String::from_utf8(bytes).map_err(|e| Error::failed(format!("stored name: {e}")))?),
        None => None,
    };
    let named = NamedOrder { customer: order.customer.clone(), name, amount: order.amount };
    ctx.forward(OwnedRecord::new(order.customer, Json(named))?);
    Ok(())
}

/// An order joined with its customer's name from the `customers` table
/// (a stream-table join): the name is the table's value, if there is one.
fn name_order(order: Option<&[u8]>, name: Option<&[u8]>) -> Result<Json<NamedOrder>> {
    let order: Order =
        serde_json::from_slice(order.unwrap_or_default()).map_err(|e| Error::invalid(format!("order: {e}")))?;
    let name = name.map(|n| String::from_utf8_lossy(n).into_owned());
    Ok(Json(NamedOrder { customer: order.customer, name, amount: order.amount }))
}

struct Customers;

impl Plugin for Customers {
    fn register(r: &mut Registry) {
        r.select_key("customer_key", customer_key).doc("keys an order by its customer");
        r.aggregate("add_order", add_order).doc("running total and count of a customer's orders");
        r.reduce("largest_order", largest_order).doc("a customer's largest order");
        r.aggregate("add_refund", add_refund).doc("takes a refund off a customer's running total (for a cogroup)");
        r.predicate("is_adult", |rec: &Record| Ok(rec.json::<User>()?.age >= 18)).doc("true for users 18 or older");
        r.map_values("user_name", |rec: &Record| Ok(rec.json::<User>()?.name)).doc("a user's name");
        r.select_key("region_of", |rec: &Record| Ok(rec.json::<User>()?.region)).doc("keys a user by region");
        r.aggregate("add_age", add_age).doc("adds a user's age to the region's total");
        r.aggregate("subtract_age", subtract_age).doc("takes a user's age out of the region's total");
        r.joiner("name_order", name_order).doc("an order with its customer's name (stream-table join)");
        r.processor("enrich_order", enrich_order).doc("adds the customer's name from the store customer-names");
    }
}

eddy_sdk::export_plugin!(Customers);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up() {
        let t = add(Total::default(), &Order { customer: "c".into(), amount: 2.5 });
        let t = add(t, &Order { customer: "c".into(), amount: 1.0 });
        assert_eq!(t, Total { orders: 2, total: 3.5 });
    }
}
