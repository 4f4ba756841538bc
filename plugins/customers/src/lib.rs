//! Customers: per-customer running totals, the seed's per-customer state case.
//!
//! Orders are JSON, `{"customer": "c1", "amount": 12.5}`. State is kept per
//! record key, so orders must be keyed by customer before they are
//! aggregated: `customer_key` does that (then write them to a topic keyed by
//! customer, so each customer's orders meet in one task). `add_order` folds
//! orders into a running total; `largest_order` keeps the largest order.

use eddy_sdk::{Error, Json, Plugin, Record, Registry, Result};
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

fn add_order(current: Option<&[u8]>, rec: &Record) -> Result<Json<Total>> {
    let order: Order = rec.json()?;
    if order.amount < 0.0 {
        return Err(Error::invalid(format!("negative amount {}", order.amount)));
    }
    let total = match current {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| Error::failed(format!("stored total: {e}")))?,
        None => Total::default(),
    };
    Ok(Json(add(total, &order)))
}

fn largest_order(current: &[u8], rec: &Record) -> Result<Vec<u8>> {
    let best: Order = serde_json::from_slice(current).map_err(|e| Error::failed(format!("stored order: {e}")))?;
    let order: Order = rec.json()?;
    Ok(if order.amount > best.amount { rec.value().unwrap_or_default().to_vec() } else { current.to_vec() })
}

fn customer_key(rec: &Record) -> Result<String> {
    Ok(rec.json::<Order>()?.customer)
}

struct Customers;

impl Plugin for Customers {
    fn register(r: &mut Registry) {
        r.select_key("customer_key", customer_key).doc("keys an order by its customer");
        r.aggregate("add_order", add_order).doc("running total and count of a customer's orders");
        r.reduce("largest_order", largest_order).doc("a customer's largest order");
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
