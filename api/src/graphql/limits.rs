//! Document limits async-graphql does not have: aliases and the size of a document once its
//! fragments are expanded (fragment bombs). Depth and complexity use the schema's own limits.
//!
//! The check runs when the request is prepared, before async-graphql parses the document:
//! its own recursion-depth check, run right after parsing, follows every fragment spread
//! without memoising, so a fragment bomb (`fragment F1 { ...F2 ...F2 }` thirty levels deep) or
//! a fragment cycle (`fragment A { ...A ...A }`) would keep a worker busy for hours.
//!
//! Before any parsing, the raw text's bracket nesting is bounded: the parser recurses once
//! per `{`, `[` or `(`, and a few thousand of them (`[[[[…` in an argument) overflow a
//! worker's stack and abort the whole process. Every parse of a client's document goes
//! through [`parse_document`] or the request preparation here.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use async_graphql::{
    Request, ServerError, ServerResult,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
    parser::{
        parse_query,
        types::{ExecutableDocument, Selection, SelectionSet},
    },
};

use super::errors::request_error;
use crate::error::ErrorCode;

/// Fields a document may select once fragments are expanded.
const MAX_EXPANDED_FIELDS: usize = 5_000;
/// Nesting of selection sets and fragments, as the schema's `limit_recursive_depth`.
const MAX_NESTING: usize = 64;

pub struct DocumentLimits {
    pub max_aliases: usize,
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentLimitsExtension { max_aliases: self.max_aliases })
    }
}

struct DocumentLimitsExtension {
    max_aliases: usize,
}

#[async_trait::async_trait]
impl Extension for DocumentLimitsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        check_nesting(&request.query)?;
        // The parsed document stays in the request for the parse step; a parse error is left to
        // that step to report.
        if let Ok(document) = request.parsed_query() {
            self.check(document)?;
        }
        next.run(ctx, request).await
    }
}

/// Parse a client's document, refusing one nested too deeply to parse safely.
pub fn parse_document(query: &str) -> ServerResult<ExecutableDocument> {
    check_nesting(query)?;
    parse_query(query).map_err(Into::into)
}

fn check_nesting(query: &str) -> ServerResult<()> {
    if nesting_depth(query) > MAX_NESTING {
        return Err(request_error(
            ErrorCode::QueryTooComplex,
            format!("document nests more than {MAX_NESTING} levels"),
        ));
    }
    Ok(())
}

/// The deepest nesting of `{`, `[` and `(` in a document, outside strings and comments.
fn nesting_depth(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

impl DocumentLimitsExtension {
    fn check(&self, document: &ExecutableDocument) -> Result<(), ServerError> {
        let mut counter =
            Counter { document, memo: HashMap::new(), expanding: HashSet::new(), cycle: None, too_deep: false };
        let mut aliases = 0usize;
        let mut fields = 0usize;
        for (_, operation) in document.operations.iter() {
            let (a, f) = counter.count(&operation.node.selection_set.node, 0);
            aliases = aliases.saturating_add(a);
            fields = fields.saturating_add(f);
        }
        if let Some(name) = counter.cycle {
            return Err(request_error(ErrorCode::BadUserInput, format!("fragment `{name}` spreads itself")));
        }
        if counter.too_deep {
            return Err(request_error(
                ErrorCode::QueryTooComplex,
                format!("document nests more than {MAX_NESTING} levels"),
            ));
        }
        if aliases > self.max_aliases {
            return Err(request_error(
                ErrorCode::QueryTooComplex,
                format!("too many aliases: {aliases} (at most {})", self.max_aliases),
            ));
        }
        if fields > MAX_EXPANDED_FIELDS {
            return Err(request_error(
                ErrorCode::QueryTooComplex,
                format!("document selects too many fields once fragments are expanded (at most {MAX_EXPANDED_FIELDS})"),
            ));
        }
        Ok(())
    }
}

struct Counter<'a> {
    document: &'a ExecutableDocument,
    /// Per fragment: (aliases, expanded fields); saturating so bombs cannot overflow.
    memo: HashMap<&'a str, (usize, usize)>,
    /// Fragments being expanded: spreading one of them again is a cycle.
    expanding: HashSet<&'a str>,
    cycle: Option<&'a str>,
    too_deep: bool,
}

impl<'a> Counter<'a> {
    /// Returns (aliases, expanded field count) of a selection set.
    fn count(&mut self, set: &'a SelectionSet, depth: usize) -> (usize, usize) {
        // Deeper than any valid document can be: refused, and not expanded further.
        if depth > MAX_NESTING {
            self.too_deep = true;
            return (0, 0);
        }
        let mut aliases = 0usize;
        let mut fields = 0usize;
        for selection in &set.items {
            let (a, f) = match &selection.node {
                Selection::Field(field) => {
                    let (a, f) = self.count(&field.node.selection_set.node, depth + 1);
                    (a + usize::from(field.node.alias.is_some()), f.saturating_add(1))
                }
                Selection::InlineFragment(fragment) => self.count(&fragment.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(known) = self.memo.get(name) {
                        *known
                    } else if self.expanding.contains(name) {
                        self.cycle = Some(name);
                        (0, 0)
                    } else if let Some(fragment) = self.document.fragments.get(name) {
                        self.expanding.insert(name);
                        let counted = self.count(&fragment.node.selection_set.node, depth + 1);
                        self.expanding.remove(name);
                        self.memo.insert(name, counted);
                        counted
                    } else {
                        (0, 0)
                    }
                }
            };
            aliases = aliases.saturating_add(a);
            fields = fields.saturating_add(f);
        }
        (aliases, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        assert_eq!(nesting_depth("{ a { b(x: [1, {c: 2}]) } }"), 5);
        assert_eq!(nesting_depth("{ a(s: \"{{{[[[(((\\\"{{\") }"), 2);
        assert_eq!(nesting_depth("{ a(s: \"\"\"{{{ \\\"\"\" {{ \"\"\") } # {{{{{{\n"), 2);
        assert_eq!(nesting_depth("}}} {"), 1);
    }

    #[test]
    fn deep_documents_are_refused_before_parsing() {
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_document(&deep).is_err());
        assert!(parse_document("{ a(x: [[1]]) { b } }").is_ok());
    }
}
