//! The action catalog folded into a built-in view's SQL: `{category:NAME}` stands for "this
//! event's (vendor, action) is filed under NAME", and is replaced, when the session is built,
//! by the catalog's own rows for NAME as a predicate on `vendor` and `action`:
//! `((vendor = 'dpod' AND action IN ('LUNA_ENCRYPT', ...)) OR (vendor = ... ))`.
//!
//! It says what `events_categorized.category = NAME` says, for every row (an action the
//! catalog does not list, or a null vendor or action, is in no category), without joining
//! each event to the catalog. A view that needs the category of a few rows only (in one
//! `FILTER` of an aggregate) avoids the join's copy of every column of every event.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::execution::context::SessionContext;

use super::{replace_marks, sql_literal};
use crate::{Error, Result};

/// The catalog's (vendor, actions) per category, as the session registered it.
#[derive(Debug, Default)]
pub struct Categories {
    by_category: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

const OPEN: &str = "{category:";

impl Categories {
    /// Reads `action_catalog` from the session (a VALUES view: no file is read).
    pub async fn of_session(ctx: &SessionContext) -> Result<Categories> {
        let batches = ctx
            .sql("SELECT category, vendor, action FROM action_catalog")
            .await?
            .collect()
            .await?;
        let mut by_category: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for b in &batches {
            // Whatever string type the VALUES came as, read as Utf8.
            let text = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8);
            let (c, v, a) = (text(0)?, text(1)?, text(2)?);
            let (c, v, a) = (
                c.as_string::<i32>(),
                v.as_string::<i32>(),
                a.as_string::<i32>(),
            );
            for i in 0..b.num_rows() {
                if c.is_null(i) || v.is_null(i) || a.is_null(i) {
                    continue;
                }
                by_category
                    .entry(c.value(i).to_string())
                    .or_default()
                    .entry(v.value(i).to_string())
                    .or_default()
                    .push(a.value(i).to_string());
            }
        }
        Ok(Categories { by_category })
    }

    /// `sql` with every `{category:NAME}` replaced by its predicate. A name the catalog does
    /// not know is an error: a typo must not read as "no event".
    pub fn expand(&self, sql: &str) -> Result<String> {
        replace_marks(sql, &[OPEN], |_, name| {
            let vendors = self.by_category.get(name).ok_or_else(|| {
                Error::Usage(format!(
                    "{OPEN}{name}}}: no such category in action_catalog"
                ))
            })?;
            Ok(predicate(vendors))
        })
    }
}

/// `((vendor = 'v' AND action IN ('a', ...)) OR ...)`: vendors by name, each one's actions
/// in catalog order.
fn predicate(vendors: &BTreeMap<String, Vec<String>>) -> String {
    let arms: Vec<String> = vendors
        .iter()
        .map(|(vendor, actions)| {
            let list: Vec<String> = actions.iter().map(|a| sql_literal(a)).collect();
            format!(
                "(vendor = {} AND action IN ({}))",
                sql_literal(vendor),
                list.join(", ")
            )
        })
        .collect();
    format!("({})", arms.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn categories() -> Categories {
        let mut c = Categories::default();
        let mut auth = BTreeMap::new();
        auth.insert("dpod".to_string(), vec!["LUNA_LOGIN".to_string()]);
        auth.insert(
            "odd'vendor".to_string(),
            vec!["Log'in".to_string(), "SignIn".to_string()],
        );
        c.by_category.insert("auth".to_string(), auth);
        c
    }

    #[test]
    fn placeholders_become_the_catalogs_rows_and_typos_are_errors() {
        let c = categories();
        assert_eq!(
            c.expand("SELECT count(*) FILTER (WHERE {category:auth}) FROM events")
                .unwrap(),
            "SELECT count(*) FILTER (WHERE ((vendor = 'dpod' AND action IN ('LUNA_LOGIN')) OR \
             (vendor = 'odd''vendor' AND action IN ('Log''in', 'SignIn')))) FROM events"
        );
        assert_eq!(c.expand("SELECT 1").unwrap(), "SELECT 1");
        assert!(c
            .expand("{category:auht}")
            .unwrap_err()
            .to_string()
            .contains("auht"));
        assert!(c.expand("{category:auth").is_err());
    }
}
