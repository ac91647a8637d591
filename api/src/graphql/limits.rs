//! Document limits async-graphql does not have: aliases and the size of a document once its
//! fragments are expanded (fragment bombs). Depth and complexity use the schema's own limits.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::errors::request_error;
use crate::error::ErrorCode;

/// Fields a document may select once fragments are expanded.
const MAX_EXPANDED_FIELDS: usize = 5_000;

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
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mut counter = Counter { document: &document, memo: HashMap::new() };
        let mut aliases = 0;
        let mut fields = 0;
        for (_, operation) in document.operations.iter() {
            let (a, f) = counter.count(&operation.node.selection_set.node, 0);
            aliases += a;
            fields = usize::saturating_add(fields, f);
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
        Ok(document)
    }
}

struct Counter<'a> {
    document: &'a ExecutableDocument,
    /// Per fragment: (aliases, expanded fields); saturating so bombs cannot overflow.
    memo: HashMap<&'a str, (usize, usize)>,
}

impl<'a> Counter<'a> {
    /// Returns (aliases, expanded field count) of a selection set.
    fn count(&mut self, set: &'a SelectionSet, depth: usize) -> (usize, usize) {
        // Deeper than any valid document can be: validation rejects it anyway.
        if depth > 64 {
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
                    } else if let Some(fragment) = self.document.fragments.get(name) {
                        // Mark first, so a cycle (rejected later by validation) ends here.
                        self.memo.insert(name, (0, 0));
                        let counted = self.count(&fragment.node.selection_set.node, depth + 1);
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
