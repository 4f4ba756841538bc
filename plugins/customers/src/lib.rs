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
//!
//! Product orders (`examples/orders`) are JSON keyed by order id,
//! `{"customer": "c1", "product": "p1", "quantity": 2}`, joined to a
//! customers table (`{"name": "Ada"}`) and a products global table
//! (`{"name": "Widget", "price": 2.5}`): `order_line` puts the order id
//! into the value, `line_customer` re-keys it by customer, `add_customer`
//! (a stream-table joiner) adds the customer's name, `line_product` (a
//! global-table key mapper) gives its product, and `price_line` (a
//! global-table joiner) adds the product's name and the total.

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

/// A product order as the `orders` topic holds it, keyed by order id.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ProductOrder {
    /// Customer id.
    pub customer: String,
    /// Product id.
    pub product: String,
    /// How many of the product.
    pub quantity: u32,
}

/// A product order on its way through the joins: with its id, and its
/// customer's name once the customers table is joined.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct OrderLine {
    /// Order id (the key of the order on the `orders` topic).
    pub order: String,
    /// Customer id.
    pub customer: String,
    /// The customer's name, if the customers table knows the customer.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// Product id.
    pub product: String,
    /// How many of the product.
    pub quantity: u32,
}

/// A customer, as the customers table holds it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Customer {
    /// Display name.
    pub name: String,
}

/// A product, as the products global table holds it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Product {
    /// Display name.
    pub name: String,
    /// Price of one.
    pub price: f64,
}

/// An order with its customer's and product's names and its total.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct EnrichedOrder {
    /// Order id.
    pub order: String,
    /// Customer id.
    pub customer: String,
    /// The customer's name, or none for a customer the table does not know.
    pub customer_name: Option<String>,
    /// Product id.
    pub product: String,
    /// The product's name.
    pub product_name: String,
    /// How many of the product.
    pub quantity: u32,
    /// Price × quantity, rounded to the cent.
    pub total: f64,
}

/// The order `id` as a line to enrich; a zero quantity is an error.
pub fn line(id: &str, order: ProductOrder) -> Result<OrderLine> {
    if order.quantity == 0 {
        return Err(Error::invalid(format!("order {id}: quantity 0")));
    }
    let ProductOrder { customer, product, quantity } = order;
    Ok(OrderLine { order: id.to_owned(), customer, customer_name: None, product, quantity })
}

/// `line` priced with `product`: its name, and the total rounded to the cent.
pub fn price(line: OrderLine, product: &Product) -> EnrichedOrder {
    let total = (product.price * f64::from(line.quantity) * 100.0).round() / 100.0;
    EnrichedOrder {
        order: line.order,
        customer: line.customer,
        customer_name: line.customer_name,
        product: line.product,
        product_name: product.name.clone(),
        quantity: line.quantity,
        total,
    }
}

/// A joiner's left side, an order line; an error if missing or malformed.
fn stored_line(value: Option<&[u8]>) -> Result<OrderLine> {
    let bytes = value.ok_or_else(|| Error::invalid("a join got no order line"))?;
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("order line: {e}")))
}

fn order_line(rec: &Record) -> Result<Json<OrderLine>> {
    Ok(Json(line(rec.key_str()?, rec.json()?)?))
}

/// The customers table's side of the join: the line with the customer's
/// name, or with none if the table has no row for the customer.
fn add_customer(order: Option<&[u8]>, customer: Option<&[u8]>) -> Result<Json<OrderLine>> {
    let mut line = stored_line(order)?;
    line.customer_name = match customer {
        Some(bytes) => {
            let customer: Customer =
                serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("customer: {e}")))?;
            Some(customer.name)
        }
        None => None,
    };
    Ok(Json(line))
}

/// The products global table's side of the join (an inner join: the
/// product is always there).
fn price_line(order: Option<&[u8]>, product: Option<&[u8]>) -> Result<Json<EnrichedOrder>> {
    let line = stored_line(order)?;
    let bytes = product.ok_or_else(|| Error::invalid(format!("order {}: no product", line.order)))?;
    let product: Product = serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("product: {e}")))?;
    Ok(Json(price(line, &product)))
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
        r.map_values("order_line", order_line).doc("a product order with its id (the key) in the value");
        r.select_key("line_customer", |rec: &Record| Ok(rec.json::<OrderLine>()?.customer))
            .doc("keys an order line by its customer");
        r.joiner("add_customer", add_customer)
            .doc("an order line with its customer's name, or none (stream-table join with customers)");
        r.select_key("line_product", |rec: &Record| Ok(rec.json::<OrderLine>()?.product))
            .doc("an order line's product id (key mapper of the join with products)");
        r.joiner("price_line", price_line)
            .doc("an order line with its product's name and the total (global-table join with products)");
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

    fn order(quantity: u32) -> ProductOrder {
        ProductOrder { customer: "c1".into(), product: "p2".into(), quantity }
    }

    #[test]
    fn a_line_carries_the_order_id_and_no_name_yet() {
        let got = line("o1", order(3)).unwrap();
        assert_eq!(
            got,
            OrderLine {
                order: "o1".into(),
                customer: "c1".into(),
                customer_name: None,
                product: "p2".into(),
                quantity: 3
            }
        );
        assert!(line("o2", order(0)).is_err(), "quantity 0 is refused");
    }

    #[test]
    fn totals_are_price_times_quantity_to_the_cent() {
        let gadget = Product { name: "Gadget".into(), price: 19.99 };
        let mut named = line("o4", order(3)).unwrap();
        named.customer_name = Some("Ada".into());
        let got = price(named, &gadget);
        assert_eq!(got.total, 59.97, "not 59.970000000000006");
        assert_eq!((got.product_name.as_str(), got.customer_name.as_deref()), ("Gadget", Some("Ada")));
        assert_eq!(price(line("o5", order(1)).unwrap(), &gadget).total, 19.99);
    }

    #[test]
    fn joiners_keep_unknown_customers_and_refuse_bad_input() {
        let line = br#"{"order": "o6", "customer": "c9", "product": "p3", "quantity": 1}"#;
        let Json(unknown) = add_customer(Some(line), None).unwrap();
        assert_eq!(unknown.customer_name, None);
        let Json(known) = add_customer(Some(line), Some(br#"{"name": "Ada"}"#)).unwrap();
        assert_eq!(known.customer_name.as_deref(), Some("Ada"));
        assert!(add_customer(None, None).is_err(), "no order");
        assert!(add_customer(Some(line), Some(b"not json")).is_err(), "bad customer");
        assert!(price_line(Some(line), None).is_err(), "no product");
        assert!(price_line(Some(line), Some(br#"{"name": "Gizmo"}"#)).is_err(), "no price");
        let Json(priced) = price_line(Some(line), Some(br#"{"name": "Gizmo", "price": 7.25}"#)).unwrap();
        assert_eq!(priced.total, 7.25);
    }
}
