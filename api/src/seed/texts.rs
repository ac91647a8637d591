//! Feedback comments and staff notes for demo interactions.

use entity::enums::{InteractionKind, ServiceCategory};
use rand::Rng;

use super::{
    catalog::ServiceSpec,
    rng::{DemoRng, choose},
};

const POSITIVE: &[&str] = &[
    "Exactly what I needed, thank you!",
    "Quick and friendly help.",
    "The librarian went above and beyond.",
    "Saved me hours on my assignment.",
    "Really clear explanations, I feel much more confident now.",
    "Great session, I will recommend it to my classmates.",
    "Easy to use and there when I need it.",
    "Helpful and patient.",
];

const MIXED: &[&str] = &[
    "Useful, but I had to wait a while.",
    "Okay overall; some links did not work off campus.",
    "Good content, but the session felt rushed.",
    "Helpful once I found the right page.",
    "Fine, though the opening hours do not suit me.",
];

const NEGATIVE: &[&str] = &[
    "Waited too long and did not get an answer.",
    "Could not log in from home again.",
    "Nothing was available when I arrived.",
    "Too noisy to work.",
    "Confusing; I gave up and asked a friend.",
];

/// Comments particular to a service, as `(code, positive, negative)`.
const SPECIFIC: &[(&str, &[&str], &[&str])] = &[
    (
        "LAPTOP-LOAN",
        &["Laptop was charged and ready, great."],
        &["No laptops left by 10am.", "Charger missing from the bag."],
    ),
    (
        "STUDY-ROOMS",
        &["Booking in the app is so easy."],
        &["The booking system double-booked our room.", "Screen in the room did not work."],
    ),
    (
        "E-JOURNALS",
        &["Full text on my phone in seconds."],
        &["The proxy kept timing out.", "Could not log in from home again."],
    ),
    ("DATABASES", &["Found exactly the studies I was looking for."], &["Login loop on the database page."]),
    (
        "CHAT-REF",
        &["Got the article I needed a few minutes into the chat."],
        &["Chat closed just as I joined the queue."],
    ),
    (
        "WRITING-CTR",
        &["My essay structure is so much clearer now."],
        &["Could not get an appointment before my deadline."],
    ),
    ("STORY-TIME", &["My daughter loves the songs!", "Lovely session, very welcoming."], &["Too crowded this week."]),
    (
        "EMBEDDED",
        &["Having a librarian in the course forum made the assignment manageable."],
        &["Reply came after the deadline."],
    ),
    ("MAKER", &["The 3D printing induction was brilliant."], &["Two printers out of order."]),
    ("ACCESS-TECH", &["The screen reader set-up changed everything for me."], &["The lab was locked when I arrived."]),
];

/// A comment fitting `rating` on `service`.
pub fn comment(rng: &mut DemoRng, service: &ServiceSpec, rating: i16) -> Option<String> {
    let specific = SPECIFIC.iter().find(|(code, _, _)| *code == service.code);
    let pool: &[&str] = match (rating, specific) {
        (4..=5, Some((_, good, _))) if rng.random_bool(0.5) => good,
        (1..=2, Some((_, _, bad))) if rng.random_bool(0.5) => bad,
        (4..=5, _) => POSITIVE,
        (3, _) => MIXED,
        _ => NEGATIVE,
    };
    choose(rng, pool).map(|s| (*s).to_owned())
}

/// A staff-only note for a staffed interaction, if one is written.
pub fn staff_note(rng: &mut DemoRng, service: &ServiceSpec, kind: InteractionKind) -> Option<String> {
    let rate = match kind {
        InteractionKind::Consultation => 0.5,
        InteractionKind::ReferenceQuestion | InteractionKind::Referral => 0.05,
        InteractionKind::Workshop => 0.04,
        _ => 0.0,
    };
    if rate == 0.0 || !rng.random_bool(rate) {
        return None;
    }
    let pool: &[&str] = match (service.code, service.category) {
        ("DATA-GIS", _) => &[
            "Cleaned census extract in R; shared a script template.",
            "Georeferenced a historical map in QGIS; follow-up booked.",
            "Reviewed the data management plan for a grant application.",
        ],
        ("SYS-REVIEW", _) => &[
            "Drafted the PubMed and Embase strategies; protocol to be registered on PROSPERO.",
            "Ran deduplication in the review tool; 1,240 records left to screen.",
        ],
        ("OA-PUB", _) => &[
            "Advised on green open access and the repository deposit.",
            "Checked the publisher's APC discount under our agreement.",
        ],
        ("HOMEWORK-HELP", _) => {
            &["Fractions worksheet; carer asked about reading lists.", "Spelling practice; very engaged today."]
        }
        ("ACCESS-TECH", _) => {
            &["Set up a screen reader profile and a magnifier preset.", "Showed text-to-speech on the library PCs."]
        }
        ("CAREER", _) => &[
            "Went through CV structure and the company databases.",
            "Interview preparation; sent links to the guides.",
        ],
        (_, ServiceCategory::Tutoring) => &[
            "Worked on paragraph structure and topic sentences; booked a follow-up.",
            "Reviewed APA referencing; student to revise the reference list.",
            "Covered hypothesis tests in SPSS.",
            "Student anxious about a deadline; referred to the study skills workshop.",
        ],
        (_, ServiceCategory::ResearchSupport) => &[
            "Built a search strategy for the literature review; sent the saved search by email.",
            "Walked through citation tracking in Scopus; follow up in two weeks.",
            "Helped set up a shared Zotero library for the project team.",
            "Discussed copyright for figures reused in the thesis.",
        ],
        _ => &[
            "Referred to the subject librarian for a longer consultation.",
            "Showed how to request an interlibrary loan.",
            "Asked about accessible formats; referred to the accessibility lab.",
            "Follow-up by email with the links discussed.",
        ],
    };
    choose(rng, pool).map(|s| (*s).to_owned())
}
