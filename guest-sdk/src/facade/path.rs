//! `obj-case` (0.x): values at dotted paths, keys matched without regard to case or
//! separators, as Segment's integrations looked up what senders spelled every which way.

use serde_json::{Map, Value};

/// `obj-case`'s normal form of a key or path: ASCII letters, digits and dots, lower case
/// (`Event Type`, `event_type` and `eventType` are all `eventtype`).
fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// One step down: an object's key or an array's index.
enum Slot<'a> {
    Key(&'a str),
    Index(usize),
}

impl Slot<'_> {
    fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        match (self, value) {
            (Slot::Key(key), Value::Object(map)) => map.get(*key),
            (Slot::Index(i), Value::Array(items)) => items.get(*i),
            _ => None,
        }
    }

    fn get_mut<'v>(&self, value: &'v mut Value) -> Option<&'v mut Value> {
        match (self, value) {
            (Slot::Key(key), Value::Object(map)) => map.get_mut(*key),
            (Slot::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        }
    }
}

/// What `path` (normalized) continues with after `key`'s normal form: the rest, when
/// the key takes a whole number of segments.
fn after<'p>(key: &str, path: &'p str) -> Option<&'p str> {
    let rest = path.strip_prefix(normalize(key).as_str())?;
    match rest.strip_prefix('.') {
        Some(rest) => Some(rest),
        None => rest.is_empty().then_some(rest),
    }
}

/// A key JavaScript treats as an array index (`0`, `17`; not `017` or `-1`), which
/// `for...in` visits before all other keys, in numeric order.
fn array_index(key: &str) -> Option<u32> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty());
    let index: u32 = key.parse().ok().filter(|_| canonical)?;
    (key.bytes().all(|b| b.is_ascii_digit()) && index < u32::MAX).then_some(index)
}

/// The key of `map` that `path` starts with, and the rest of the path. Like obj-case, the
/// first match in JavaScript's enumeration order wins (index-like keys first, in numeric
/// order, then the others in the order they came), without backtracking if it leads
/// nowhere.
fn step_object<'m, 'p>(map: &'m Map<String, Value>, path: &'p str) -> Option<(&'m str, &'p str)> {
    let mut found: Option<(Option<u32>, &str, &str)> = None;
    for key in map.keys() {
        let Some(rest) = after(key, path) else {
            continue;
        };
        let index = array_index(key);
        let better = match (&found, index) {
            (None, _) => true,
            (Some((None, _, _)), Some(_)) => true,
            (Some((Some(best), _, _)), Some(index)) => index < *best,
            (Some(_), None) => false,
        };
        if better {
            found = Some((index, key, rest));
        }
    }
    found.map(|(_, key, rest)| (key, rest))
}

/// The slots `path` leads through from `root`, as obj-case walks them: it stops early,
/// at the slot holding a `null`, when the path goes on past one (obj-case then reads, or
/// deletes, that `null`'s key). Strings are leaves here (obj-case would index their
/// characters).
fn slots<'v>(root: &'v Value, path: &str) -> Option<Vec<Slot<'v>>> {
    let path = normalize(path);
    let mut rest = path.as_str();
    let mut current = root;
    let mut slots = Vec::new();
    loop {
        let (slot, next) = match current {
            Value::Object(map) => {
                let (key, next) = step_object(map, rest)?;
                // obj-case gives up on a matching key that is the empty string.
                if key.is_empty() {
                    return None;
                }
                (Slot::Key(key), next)
            }
            Value::Array(items) => {
                let segment = rest.split('.').next().unwrap_or_default();
                let index = array_index(segment).filter(|i| (*i as usize) < items.len())?;
                let next = rest[segment.len()..].strip_prefix('.').unwrap_or_default();
                (Slot::Index(index as usize), next)
            }
            _ => return None,
        };
        let child = slot.get(current)?;
        slots.push(slot);
        if next.is_empty() || child.is_null() {
            return Some(slots);
        }
        current = child;
        rest = next;
    }
}

/// `obj-case`: the value at a dotted `path` in `obj`, matching each key without regard
/// to case or separators (`firstName` finds `first_name`, `First Name`), keys that contain
/// dots included (`a.b.c` finds `{"a": {"b.c": 1}}`), and array elements by index
/// (`products.0.sku`). `None` when there is no such value or it is `null`.
///
/// ```
/// use segfn_sdk::facade::lookup;
/// use serde_json::json;
/// let traits = json!({"First Name": "Jane", "address": {"postal_code": "10115"}, "tags": ["a", "b"]});
/// assert_eq!(lookup(&traits, "firstName"), Some(&json!("Jane")));
/// assert_eq!(lookup(&traits, "Address.PostalCode"), Some(&json!("10115")));
/// assert_eq!(lookup(&traits, "tags.1"), Some(&json!("b")));
/// assert_eq!(lookup(&traits, "lastName"), None);
/// ```
pub fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let slots = slots(obj, path)?;
    let value = slots.iter().try_fold(obj, |value, slot| slot.get(value))?;
    Some(value).filter(|v| !v.is_null())
}

/// `obj-case`'s `del`: removes the value at `path`, found as [`lookup`] finds it, from
/// `obj`. The other keys keep their order; an array element becomes `null` (JavaScript's
/// `delete` leaves a hole, which JSON writes as `null`). Nothing happens when there is no
/// such path.
///
/// ```
/// use segfn_sdk::facade::remove;
/// use serde_json::json;
/// let mut props = json!({"Order ID": "o-1", "total": 10, "meta": {"sent_at": 1}});
/// let props = props.as_object_mut().unwrap();
/// remove(props, "orderId");
/// remove(props, "meta.sentAt");
/// assert_eq!(serde_json::Value::from(props.clone()), json!({"total": 10, "meta": {}}));
/// ```
pub fn remove(obj: &mut Map<String, Value>, path: &str) {
    let mut root = Value::Object(std::mem::take(obj));
    remove_in(&mut root, path);
    if let Value::Object(map) = root {
        *obj = map;
    }
}

fn remove_in(root: &mut Value, path: &str) {
    // Where to go, as owned steps, so that the walk below can borrow mutably.
    let Some(steps) = slots(root, path).map(|slots| {
        slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Key(key) => Err(key.to_owned()),
                Slot::Index(i) => Ok(i),
            })
            .collect::<Vec<_>>()
    }) else {
        return;
    };
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    fn slot(step: &Result<usize, String>) -> Slot<'_> {
        match step {
            Ok(i) => Slot::Index(*i),
            Err(key) => Slot::Key(key.as_str()),
        }
    }
    let mut parent = root;
    for step in parents {
        match slot(step).get_mut(parent) {
            Some(child) => parent = child,
            None => return,
        }
    }
    match (parent, last) {
        (Value::Object(map), Err(key)) => {
            map.shift_remove(key);
        }
        (Value::Array(items), Ok(i)) => {
            if let Some(item) = items.get_mut(*i) {
                *item = Value::Null;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_without_regard_to_case_or_separators() {
        let obj = json!({"first_name": "Calvin", "Last Name": "F", "camel_Case": true});
        assert_eq!(lookup(&obj, "firstName"), Some(&json!("Calvin")));
        assert_eq!(lookup(&obj, "FIRST-NAME"), Some(&json!("Calvin")));
        assert_eq!(lookup(&obj, "last_name"), Some(&json!("F")));
        assert_eq!(lookup(&obj, "camel_Case"), Some(&json!(true)));
        // Non-ASCII letters are not part of the normal form, on either side.
        assert_eq!(lookup(&json!({"prénom": "J"}), "prnom"), Some(&json!("J")));
    }

    #[test]
    fn nested_paths_and_keys_with_dots() {
        let obj = json!({"A bird": {"flew_under": {"theTrain": 4}}});
        assert_eq!(lookup(&obj, "a bird.flew_under.the_train"), Some(&json!(4)));
        assert_eq!(lookup(&json!({"a.b": 10}), "a.b"), Some(&json!(10)));
        assert_eq!(
            lookup(&json!({"a": {"b.c": 10}}), "a.b.c"),
            Some(&json!(10))
        );
        let crazy = json!({"some-crazy.PROBABLY_POSSIBLE.NestedProperty": 10});
        assert_eq!(
            lookup(&crazy, "SOME_CRAZY.ProbablyPossible.nested_property"),
            Some(&json!(10))
        );
        assert_eq!(
            lookup(&crazy, "SOME_CRAZY.ProbablyMssplld.nested_property"),
            None
        );
        assert_eq!(lookup(&json!({}), "a.b.c"), None);
    }

    #[test]
    fn falsy_values_are_found_null_is_absent() {
        let obj = json!({"a": {"b": false, "z": 0, "e": "", "n": null}});
        assert_eq!(lookup(&obj, "a.b"), Some(&json!(false)));
        assert_eq!(lookup(&obj, "a.z"), Some(&json!(0)));
        assert_eq!(lookup(&obj, "a.e"), Some(&json!("")));
        assert_eq!(lookup(&obj, "a.n"), None);
        assert_eq!(lookup(&obj, "a.n.deeper"), None);
        // A primitive has no keys.
        assert_eq!(lookup(&obj, "a.z.x"), None);
        assert_eq!(lookup(&json!({"s": "abc"}), "s.0"), None);
    }

    #[test]
    fn keys_sharing_a_prefix_are_told_apart() {
        let obj = json!({"websites": "b", "website": "a"});
        assert_eq!(lookup(&obj, "website"), Some(&json!("a")));
        assert_eq!(lookup(&obj, "websites"), Some(&json!("b")));
        assert_eq!(lookup(&json!({"websites": "b"}), "website"), None);
        let nested = json!({"website": {"left": "a"}, "websites": {"right": "b"}});
        assert_eq!(lookup(&nested, "website.left"), Some(&json!("a")));
        assert_eq!(lookup(&nested, "websites.right"), Some(&json!("b")));
    }

    #[test]
    fn the_first_match_in_javascript_order_wins() {
        // Insertion order among ordinary keys, and no backtracking past a dead end.
        let obj = json!({"first_name": "a", "firstName": "b"});
        assert_eq!(lookup(&obj, "firstname"), Some(&json!("a")));
        let dead_end = json!({"a": {"x": 1}, "a.b": 2});
        assert_eq!(lookup(&dead_end, "a.b"), None);
        // Index-like keys come first, in numeric order, wherever they were written.
        let indexed = json!({"1.x": "dotted", "2": {"x": "two"}, "1": {"x": "one"}});
        assert_eq!(lookup(&indexed, "1.x"), Some(&json!("one")));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
    }

    #[test]
    fn arrays_are_indexed() {
        let obj = json!({"products": [{"sku": "a"}, {"SKU": "b"}, null]});
        assert_eq!(lookup(&obj, "products.0.sku"), Some(&json!("a")));
        assert_eq!(lookup(&obj, "products.1.sku"), Some(&json!("b")));
        assert_eq!(lookup(&obj, "products.2.sku"), None);
        assert_eq!(lookup(&obj, "products.3"), None);
        assert_eq!(lookup(&obj, "products.01.sku"), None);
        assert_eq!(lookup(&json!([[1, 2, 3]]), "0.2"), Some(&json!(3)));
        let many: Vec<u32> = (0..12).collect();
        assert_eq!(lookup(&json!({"n": many}), "n.11"), Some(&json!(11)));
    }

    #[test]
    fn remove_deletes_what_lookup_finds() {
        let mut obj =
            json!({"firstName": "C", "lastName": "F", "A bird": {"flew_under": {"x": 1}}});
        let map = obj.as_object_mut().unwrap();
        remove(map, "first name");
        remove(map, "aBird.FLEW UNDER");
        remove(map, "nothing.here");
        assert_eq!(
            Value::from(map.clone()),
            json!({"lastName": "F", "A bird": {}})
        );

        let mut obj = json!({"list": [1, 2, 3], "gone": null, "keep": 1});
        let map = obj.as_object_mut().unwrap();
        remove(map, "list.1");
        // obj-case deletes a `null` it meets before the path ends.
        remove(map, "gone.deeper");
        assert_eq!(
            Value::from(map.clone()),
            json!({"list": [1, null, 3], "keep": 1})
        );
    }
}
