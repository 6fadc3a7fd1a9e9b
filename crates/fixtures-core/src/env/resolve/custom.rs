//! Custom fixtures (made by the user's code, with their teardowns) and values.

use super::*;
use crate::env::node::{CustomNode, ValueNode};

/// A value: given, computed from what it needs, or null.
pub(super) fn value(v: &ValueNode, resolved: &Resolved) -> Result<Fixture> {
    match (&v.value, &v.compute) {
        (Some(value), _) => Ok(Fixture::Value(value.clone())),
        (None, Some((_, f))) => f(resolved).map(Fixture::Value),
        (None, None) => Ok(Fixture::Value(Value::Null)),
    }
}

/// A custom fixture; its teardown is kept by its group when shared, else by the test.
pub(super) async fn make(c: &CustomNode, m: Making<'_>) -> Result<Fixture> {
    let Making { t, name, scope, .. } = m;
    let sig = format!("custom-{}", c.type_name);
    let make = (c.make)(m.resolved.clone());
    let key = scope_key(t, name, scope, &sig);
    let teardown = |value: &Arc<dyn Any + Send + Sync>, shared_key: Option<String>| {
        c.teardown.clone().map(|run| Teardown {
            fixture: name.to_owned(),
            scope,
            value: value.clone(),
            run,
            timeout: c.teardown_timeout,
            shared_key,
        })
    };
    let made = m
        .scoped(&sig, async {
            let value = make.await?;
            // A shared fixture's teardown is kept once, by the process, when it is made.
            if let Some(kept) = key.as_ref().and_then(|k| teardown(&value, Some(k.clone()))) {
                match &m.group {
                    Some(group) => lifetime::keep_teardown(group, kept),
                    None => t.teardowns.lock().unwrap_or_else(|p| p.into_inner()).push(kept),
                }
            }
            Ok(Fixture::Custom(value))
        })
        .await?;
    if let (None, Fixture::Custom(value)) = (&key, &made) {
        if let Some(teardown) = teardown(value, None) {
            t.teardowns.lock().unwrap_or_else(|p| p.into_inner()).push(teardown);
        }
    }
    Ok(made)
}
