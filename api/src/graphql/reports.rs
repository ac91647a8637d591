//! `fundingReport`: usage and funding of the services a funder pays for, per period, with
//! k-anonymity (rules in `domain::reports`).

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use super::{
    context::ContextExt,
    ids::{NodeKind, parse_global_id, to_global_id},
    scalars::{Date, Money},
};
use crate::domain::reports::{self as domain, Granularity, ReportQuery};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "ReportGranularity")]
pub enum ReportGranularity {
    Day,
    Week,
    Month,
    Quarter,
}

impl From<ReportGranularity> for Granularity {
    fn from(g: ReportGranularity) -> Self {
        match g {
            ReportGranularity::Day => Granularity::Day,
            ReportGranularity::Week => Granularity::Week,
            ReportGranularity::Month => Granularity::Month,
            ReportGranularity::Quarter => Granularity::Quarter,
        }
    }
}

impl From<Granularity> for ReportGranularity {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::Day => ReportGranularity::Day,
            Granularity::Week => ReportGranularity::Week,
            Granularity::Month => ReportGranularity::Month,
            Granularity::Quarter => ReportGranularity::Quarter,
        }
    }
}

/// A count that is `null` with `suppressed: true` when it could identify fewer than k patrons.
#[derive(SimpleObject, Clone, Copy)]
pub struct ReportCount {
    pub value: Option<i64>,
    pub suppressed: bool,
}

impl From<domain::Cell> for ReportCount {
    fn from(c: domain::Cell) -> Self {
        ReportCount { value: c.value, suppressed: c.suppressed }
    }
}

/// Average satisfaction (1–5); `null` without ratings or when suppressed.
#[derive(SimpleObject, Clone, Copy)]
pub struct ReportAverage {
    pub value: Option<f64>,
    pub suppressed: bool,
}

#[derive(SimpleObject)]
pub struct ChannelBreakdown {
    /// Channel (e.g. `IN_PERSON`).
    pub channel: String,
    pub interactions: ReportCount,
    pub unique_patrons: ReportCount,
}

#[derive(SimpleObject)]
pub struct PatronTypeBreakdown {
    /// Patron type (e.g. `ADULT`).
    pub patron_type: String,
    pub interactions: ReportCount,
    pub unique_patrons: ReportCount,
}

/// Figures of one service and period (or totals).
#[derive(SimpleObject)]
pub struct ReportMetrics {
    pub interactions: ReportCount,
    pub unique_patrons: ReportCount,
    /// Patrons whose first use of the service falls in the period.
    pub new_patrons: ReportCount,
    /// Patrons of the period who had used the service before it.
    pub returning_patrons: ReportCount,
    pub average_satisfaction: ReportAverage,
    pub rating_count: ReportCount,
    pub by_channel: Vec<ChannelBreakdown>,
    pub by_patron_type: Vec<PatronTypeBreakdown>,
    /// Grants spread evenly per day over their period, summed over the days of this one.
    pub funding_attributed: Option<Money>,
    /// Funding attributed ÷ interactions (`null` without visible interactions).
    pub cost_per_interaction: Option<Money>,
}

impl From<domain::Metrics> for ReportMetrics {
    fn from(m: domain::Metrics) -> Self {
        ReportMetrics {
            interactions: m.interactions.into(),
            unique_patrons: m.unique_patrons.into(),
            new_patrons: m.new_patrons.into(),
            returning_patrons: m.returning_patrons.into(),
            average_satisfaction: ReportAverage {
                value: m.average_satisfaction,
                suppressed: m.satisfaction_suppressed,
            },
            rating_count: m.rating_count.into(),
            by_channel: m
                .by_channel
                .into_iter()
                .map(|b| ChannelBreakdown {
                    channel: b.key,
                    interactions: b.interactions.into(),
                    unique_patrons: b.unique_patrons.into(),
                })
                .collect(),
            by_patron_type: m
                .by_patron_type
                .into_iter()
                .map(|b| PatronTypeBreakdown {
                    patron_type: b.key,
                    interactions: b.interactions.into(),
                    unique_patrons: b.unique_patrons.into(),
                })
                .collect(),
            funding_attributed: m.funding_attributed.map(|(a, c)| Money::new(a, &c)),
            cost_per_interaction: m.cost_per_interaction.map(|(a, c)| Money::new(a, &c)),
        }
    }
}

#[derive(SimpleObject)]
pub struct ReportPeriod {
    /// First day of the period (clipped to the report range).
    pub start: Date,
    /// Last day of the period (inclusive, clipped to the report range).
    pub end: Date,
    pub metrics: ReportMetrics,
}

#[derive(SimpleObject)]
pub struct ServiceReport {
    pub service_id: ID,
    pub service_name: String,
    pub periods: Vec<ReportPeriod>,
    pub totals: ReportMetrics,
}

#[derive(SimpleObject)]
pub struct FundingReport {
    pub funder_id: ID,
    pub from: Date,
    pub to: Date,
    pub granularity: ReportGranularity,
    /// The k of k-anonymity applied.
    pub k: i32,
    pub services: Vec<ServiceReport>,
    /// Totals over all funded services and the whole range.
    pub totals: ReportMetrics,
    /// Net promoter score among the patrons who used a funded service in the range.
    pub nps: ReportNps,
}

/// "Would you recommend the library" (0–10) answered in the report range by patrons who used a
/// funded service in it: each respondent's latest answer counts once. `suppressed` (and every
/// figure `null`) when fewer than k patrons answered.
#[derive(SimpleObject, Clone, Copy)]
pub struct ReportNps {
    pub respondents: ReportCount,
    /// Promoters (9–10) % minus detractors (0–6) %, from −100 to 100; `null` without answers.
    pub score: Option<f64>,
    pub suppressed: bool,
}

impl From<domain::FundingReport> for FundingReport {
    fn from(r: domain::FundingReport) -> Self {
        FundingReport {
            funder_id: to_global_id(NodeKind::Funder, r.funder_id),
            from: Date(r.from),
            to: Date(r.to),
            granularity: r.granularity.into(),
            k: i32::try_from(r.k).unwrap_or(i32::MAX),
            services: r
                .services
                .into_iter()
                .map(|s| ServiceReport {
                    service_id: to_global_id(NodeKind::Service, s.service_id),
                    service_name: s.service_name,
                    periods: s
                        .periods
                        .into_iter()
                        .map(|p| ReportPeriod { start: Date(p.start), end: Date(p.end), metrics: p.metrics.into() })
                        .collect(),
                    totals: s.totals.into(),
                })
                .collect(),
            totals: r.totals.into(),
            nps: ReportNps {
                respondents: r.nps.respondents.into(),
                score: r.nps.score,
                suppressed: r.nps.respondents.suppressed,
            },
        }
    }
}

#[derive(Default)]
pub struct ReportQueryRoot;

#[Object]
impl ReportQueryRoot {
    /// Usage and funding of the services `funderId` funds between `from` and `to` (inclusive),
    /// per period. FUNDER: own funder only; STAFF/ADMIN: any; PARTNER: `reports:read`.
    async fn funding_report(
        &self,
        ctx: &Context<'_>,
        funder_id: ID,
        from: Date,
        to: Date,
        granularity: ReportGranularity,
    ) -> Result<FundingReport> {
        let viewer = ctx.viewer();
        let funder_id = parse_global_id(&funder_id, NodeKind::Funder, "funderId")?;
        let state = ctx.state()?;
        let q = ReportQuery { funder_id, from: from.0, to: to.0, granularity: granularity.into() };
        Ok(domain::report_for(state, viewer, q).await?.into())
    }
}
