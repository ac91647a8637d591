//! The fixed part of the demo library: its services (with how each is used), the personas that
//! give patrons' histories their co-usage structure, and the funders with their grants.

use chrono::Weekday;
use entity::enums::{Channel, FunderKind, InteractionKind, PatronType, ServiceCategory};

pub const MAIN: &str = "Main Library";
pub const SCIENCE: &str = "Science Library";
pub const HEALTH: &str = "Health Sciences Library";
pub const LAW: &str = "Law Library";
pub const ONLINE: &str = "Online";

/// Branches with a building (where in-person interactions happen).
pub const PHYSICAL_BRANCHES: &[&str] = &[MAIN, SCIENCE, HEALTH, LAW];

/// One way a service is used: what happens, over which channel, how often relative to the
/// service's other modes, and whether a member of staff takes part.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub kind: InteractionKind,
    pub channel: Channel,
    pub weight: f64,
    pub staffed: bool,
}

const fn m(kind: InteractionKind, channel: Channel, weight: f64, staffed: bool) -> Mode {
    Mode { kind, channel, weight, staffed }
}

/// When a service happens: any time the channel allows, or at scheduled sessions.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    Open,
    /// Sessions on these weekdays starting at these `(hour, minute)` times (UTC).
    Sessions {
        days: &'static [Weekday],
        times: &'static [(u32, u32)],
    },
}

/// A library service as the generator knows it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    pub code: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub category: ServiceCategory,
    /// Patron types it is meant for; empty means everyone. Others never use it.
    pub audience: &'static [PatronType],
    pub modes: &'static [Mode],
    /// Physical branches where it runs in person; empty means every branch.
    pub branches: &'static [&'static str],
    /// Named specialists who staff it; empty means the branch team.
    pub staff: &'static [&'static str],
    pub schedule: Schedule,
    /// How likely a patron is to take it up (relative).
    pub reach: f64,
    /// How often one user uses it (relative).
    pub frequency: f64,
    /// Satisfaction shift, -1 (poor) to 1 (excellent).
    pub quality: f64,
    /// Share of its interactions that get a rating.
    pub rating_rate: f64,
    /// Retired this many days before the anchor (the service is then inactive).
    pub retired_days_ago: Option<i64>,
}

impl ServiceSpec {
    /// The channels of its modes, in order of first appearance.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out: Vec<Channel> = Vec::new();
        for mode in self.modes {
            if !out.contains(&mode.channel) {
                out.push(mode.channel);
            }
        }
        out
    }

    pub fn allows(&self, patron_type: PatronType) -> bool {
        self.audience.is_empty() || self.audience.contains(&patron_type)
    }
}

use Channel::{Chat, Email, EmbeddedCourse, InPerson, MobileApp, Phone, Sms, Web};
use InteractionKind::{
    Consultation, EResourceAccess, EventAttendance, Loan, Outreach, ReferenceQuestion, Referral, Visit, Workshop,
};
use PatronType::{Alumni, Child, Faculty, OnCampusStudent, OnlineLearner, Public, StaffMember};

const STUDENTS: &[PatronType] = &[OnCampusStudent, OnlineLearner];
const ACADEMIC: &[PatronType] = &[OnCampusStudent, OnlineLearner, Faculty, StaffMember];
const WEEKDAYS: &[Weekday] = &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu];

/// The services, in a fixed order (ids and references use the index).
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        code: "REF-DESK",
        name: "Reference desk",
        description: "Walk-up and phone help from a librarian: finding sources, using the catalogue, \
                      getting started on an assignment or a personal research question.",
        category: ServiceCategory::Reference,
        audience: &[],
        modes: &[
            m(ReferenceQuestion, InPerson, 0.80, true),
            m(ReferenceQuestion, Phone, 0.12, true),
            m(Referral, InPerson, 0.08, true),
        ],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.0,
        frequency: 1.0,
        quality: 0.3,
        rating_rate: 0.14,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "CHAT-REF",
        name: "Ask a Librarian chat",
        description: "Live chat with a librarian from the website and the app, staffed from early \
                      morning to late evening, with a short survey after each chat.",
        category: ServiceCategory::Reference,
        audience: &[],
        modes: &[m(ReferenceQuestion, Chat, 1.0, true)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.0,
        frequency: 1.3,
        quality: 0.5,
        rating_rate: 0.26,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "EMAIL-REF",
        name: "Email a librarian",
        description: "Questions by email, answered by the reference team within one working day.",
        category: ServiceCategory::Reference,
        audience: &[],
        modes: &[m(ReferenceQuestion, Email, 1.0, true)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.35,
        frequency: 0.6,
        quality: 0.2,
        rating_rate: 0.12,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "E-JOURNALS",
        name: "E-journals",
        description: "Full-text access to more than 60,000 journals on and off campus through the \
                      library proxy and the app.",
        category: ServiceCategory::EResources,
        audience: &[],
        modes: &[m(EResourceAccess, Web, 0.7, false), m(EResourceAccess, MobileApp, 0.3, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.3,
        frequency: 4.0,
        quality: 0.2,
        rating_rate: 0.06,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "E-BOOKS",
        name: "E-book collection",
        description: "Academic and general-interest e-books to read online or borrow to the app.",
        category: ServiceCategory::EResources,
        audience: &[],
        modes: &[m(EResourceAccess, Web, 0.6, false), m(EResourceAccess, MobileApp, 0.4, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.1,
        frequency: 2.5,
        quality: 0.0,
        rating_rate: 0.07,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "DATABASES",
        name: "Research databases",
        description: "Subject databases (Scopus, PubMed, PsycINFO, Westlaw, JSTOR and more) with \
                      remote access for members.",
        category: ServiceCategory::EResources,
        audience: &[],
        modes: &[m(EResourceAccess, Web, 1.0, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.0,
        frequency: 3.0,
        quality: 0.1,
        rating_rate: 0.05,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "ILL",
        name: "Interlibrary loan",
        description: "Books and articles we do not hold, requested from partner libraries; articles \
                      delivered as PDF, books collected at your branch.",
        category: ServiceCategory::InterLibraryLoan,
        audience: ACADEMIC,
        modes: &[m(Loan, Web, 0.75, false), m(Loan, Email, 0.10, true), m(Loan, InPerson, 0.15, true)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.5,
        frequency: 1.5,
        quality: 0.3,
        rating_rate: 0.12,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "BOOK-LOAN",
        name: "Print collection loans",
        description: "Borrowing from the print collections at every branch, with self-checkout and \
                      renewals in the app.",
        category: ServiceCategory::Loans,
        audience: &[],
        modes: &[m(Loan, InPerson, 1.0, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.0,
        frequency: 2.0,
        quality: 0.2,
        rating_rate: 0.06,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "LAPTOP-LOAN",
        name: "Laptop and charger loans",
        description: "Day loans of laptops and chargers from the service desk, first come first served.",
        category: ServiceCategory::Loans,
        audience: STUDENTS,
        modes: &[m(Loan, InPerson, 1.0, true)],
        branches: &[MAIN, SCIENCE],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.7,
        frequency: 2.2,
        quality: -0.35,
        rating_rate: 0.12,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "STUDY-ROOMS",
        name: "Group study rooms",
        description: "Bookable rooms for two to eight people with screens and whiteboards; book in \
                      the app or on the web, check in at the room.",
        category: ServiceCategory::Spaces,
        audience: STUDENTS,
        modes: &[m(Visit, InPerson, 0.55, false), m(Visit, MobileApp, 0.30, false), m(Visit, Web, 0.15, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.9,
        frequency: 2.5,
        quality: -0.1,
        rating_rate: 0.09,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "WRITING-CTR",
        name: "Writing centre",
        description: "One-to-one sessions on academic writing: structure, argument, referencing and \
                      language, in person or by video.",
        category: ServiceCategory::Tutoring,
        audience: STUDENTS,
        modes: &[m(Consultation, InPerson, 0.6, true), m(Consultation, Web, 0.4, true)],
        branches: &[MAIN, HEALTH, LAW],
        staff: &["Naledi Khumalo", "Owen Fletcher", "Ana Lucía Romero"],
        schedule: Schedule::Open,
        reach: 0.6,
        frequency: 1.3,
        quality: 0.7,
        rating_rate: 0.30,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "RESEARCH-CONSULT",
        name: "Research consultations",
        description: "A 45-minute appointment with a subject librarian to plan a literature search, \
                      choose databases and manage sources.",
        category: ServiceCategory::ResearchSupport,
        audience: ACADEMIC,
        modes: &[
            m(Consultation, InPerson, 0.5, true),
            m(Consultation, Web, 0.35, true),
            m(Consultation, Email, 0.15, true),
        ],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.45,
        frequency: 0.9,
        quality: 0.8,
        rating_rate: 0.30,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "DATA-GIS",
        name: "Data and GIS help",
        description: "Help finding, cleaning and mapping data: statistics sources, R and Python \
                      basics, QGIS and ArcGIS, data management plans.",
        category: ServiceCategory::ResearchSupport,
        audience: ACADEMIC,
        modes: &[
            m(Consultation, InPerson, 0.5, true),
            m(Consultation, Email, 0.2, true),
            m(ReferenceQuestion, Email, 0.3, true),
        ],
        branches: &[SCIENCE],
        staff: &["Helena Vogt", "Kwame Asante"],
        schedule: Schedule::Open,
        reach: 0.22,
        frequency: 1.2,
        quality: 0.6,
        rating_rate: 0.24,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "INFO-LIT",
        name: "Information literacy workshops",
        description: "Hands-on workshops on searching, evaluating sources and avoiding plagiarism, \
                      in the library or live online.",
        category: ServiceCategory::Workshops,
        audience: &[],
        modes: &[m(Workshop, InPerson, 0.6, true), m(Workshop, Web, 0.4, true)],
        branches: &[MAIN, SCIENCE, HEALTH],
        staff: &[],
        schedule: Schedule::Sessions { days: &[Weekday::Tue, Weekday::Thu], times: &[(14, 0), (16, 0)] },
        reach: 0.5,
        frequency: 0.8,
        quality: 0.3,
        rating_rate: 0.30,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "CITE-WS",
        name: "Citation manager workshops (Zotero, EndNote)",
        description: "Lunchtime webinars and drop-in labs on collecting, organising and citing \
                      references with Zotero or EndNote.",
        category: ServiceCategory::Workshops,
        audience: ACADEMIC,
        modes: &[m(Workshop, Web, 0.7, true), m(Workshop, InPerson, 0.3, true)],
        branches: &[MAIN, HEALTH],
        staff: &[],
        schedule: Schedule::Sessions { days: &[Weekday::Wed], times: &[(12, 0), (17, 30)] },
        reach: 0.35,
        frequency: 0.6,
        quality: 0.5,
        rating_rate: 0.32,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "EMBEDDED",
        name: "Embedded librarian in online courses",
        description: "A librarian inside the online course space: a research forum, short videos and \
                      live Q&A timed to each assignment.",
        category: ServiceCategory::EmbeddedLibrarian,
        audience: &[OnlineLearner, OnCampusStudent, Faculty],
        modes: &[
            m(ReferenceQuestion, EmbeddedCourse, 0.6, true),
            m(Outreach, EmbeddedCourse, 0.25, true),
            m(Workshop, EmbeddedCourse, 0.15, true),
        ],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.0,
        frequency: 1.8,
        quality: 0.5,
        rating_rate: 0.16,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "ONLINE-ORIENT",
        name: "Online library orientation",
        description: "A live online introduction to the library for distance learners: access, \
                      searching, getting help. Repeated each week of term.",
        category: ServiceCategory::Workshops,
        audience: &[OnlineLearner],
        modes: &[m(Workshop, Web, 0.7, true), m(Workshop, EmbeddedCourse, 0.3, true)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Sessions { days: &[Weekday::Mon, Weekday::Sat], times: &[(18, 0), (10, 0)] },
        reach: 0.5,
        frequency: 0.4,
        quality: 0.4,
        rating_rate: 0.35,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "TUTORING",
        name: "Peer tutoring: maths and statistics",
        description: "Drop-in and booked sessions with trained student tutors for maths, statistics \
                      and SPSS.",
        category: ServiceCategory::Tutoring,
        audience: STUDENTS,
        modes: &[m(Consultation, InPerson, 0.7, true), m(Consultation, Web, 0.3, true)],
        branches: &[MAIN, SCIENCE],
        staff: &["Jonas Weber", "Aisha Bello", "Minh Tran"],
        schedule: Schedule::Open,
        reach: 0.35,
        frequency: 1.6,
        quality: 0.4,
        rating_rate: 0.24,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "MAKER",
        name: "Maker space and 3D printing",
        description: "3D printers, laser cutter, electronics benches and sewing machines, with \
                      inductions and weekly skills sessions.",
        category: ServiceCategory::Spaces,
        audience: &[],
        modes: &[m(Visit, InPerson, 0.75, true), m(Workshop, InPerson, 0.25, true)],
        branches: &[SCIENCE],
        staff: &["Diego Alvarez", "Hana Sato"],
        schedule: Schedule::Open,
        reach: 0.25,
        frequency: 1.5,
        quality: 0.6,
        rating_rate: 0.14,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "EVENTS",
        name: "Exhibitions and author events",
        description: "Exhibitions from the special collections, author talks and panel evenings, \
                      also streamed live.",
        category: ServiceCategory::Events,
        audience: &[],
        modes: &[m(EventAttendance, InPerson, 0.8, false), m(EventAttendance, Web, 0.2, false)],
        branches: &[MAIN],
        staff: &[],
        schedule: Schedule::Sessions { days: &[Weekday::Thu, Weekday::Sat], times: &[(18, 0), (14, 0)] },
        reach: 0.4,
        frequency: 0.7,
        quality: 0.6,
        rating_rate: 0.18,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "STORY-TIME",
        name: "Children's story time",
        description: "Stories, songs and rhymes for children up to eight and their carers, twice a week.",
        category: ServiceCategory::Events,
        audience: &[Child, Public],
        modes: &[m(EventAttendance, InPerson, 1.0, true)],
        branches: &[MAIN],
        staff: &["Rosa Delgado", "Ewan MacLeod"],
        schedule: Schedule::Sessions { days: &[Weekday::Wed, Weekday::Sat], times: &[(10, 30)] },
        reach: 1.0,
        frequency: 2.0,
        quality: 0.9,
        rating_rate: 0.12,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "HOMEWORK-HELP",
        name: "Homework help club",
        description: "After-school homework help for school-age children with volunteer tutors.",
        category: ServiceCategory::Tutoring,
        audience: &[Child],
        modes: &[m(Consultation, InPerson, 1.0, true)],
        branches: &[MAIN],
        staff: &["Rosa Delgado", "Farid Haddad"],
        schedule: Schedule::Sessions { days: WEEKDAYS, times: &[(15, 30), (16, 30)] },
        reach: 0.35,
        frequency: 1.5,
        quality: 0.7,
        rating_rate: 0.14,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "ALUMNI-DB",
        name: "Alumni database access",
        description: "A selection of business, news and journal databases licensed for alumni.",
        category: ServiceCategory::EResources,
        audience: &[Alumni],
        modes: &[m(EResourceAccess, Web, 1.0, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 1.0,
        frequency: 2.5,
        quality: 0.0,
        rating_rate: 0.05,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "CAREER",
        name: "Career and job-search resources",
        description: "Company and industry information, CV and interview guides, and job-search \
                      workshops with the careers service.",
        category: ServiceCategory::Other,
        audience: &[Alumni, Public, OnCampusStudent, OnlineLearner, StaffMember],
        modes: &[
            m(EResourceAccess, Web, 0.6, false),
            m(Workshop, InPerson, 0.25, true),
            m(Consultation, InPerson, 0.15, true),
        ],
        branches: &[MAIN],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.3,
        frequency: 1.0,
        quality: 0.3,
        rating_rate: 0.12,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "OA-PUB",
        name: "Open-access publishing support",
        description: "Advice on open-access routes, funder mandates and article processing charges, \
                      and deposit in the institutional repository.",
        category: ServiceCategory::ResearchSupport,
        audience: &[Faculty, StaffMember],
        modes: &[m(Consultation, Email, 0.6, true), m(Consultation, Web, 0.4, true)],
        branches: &[],
        staff: &["Ingrid Larsen", "Tomás Herrera"],
        schedule: Schedule::Open,
        reach: 0.4,
        frequency: 0.8,
        quality: 0.6,
        rating_rate: 0.22,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "THESIS",
        name: "Thesis and dissertation support",
        description: "Help for research students: literature reviews, formatting, copyright and \
                      depositing the final thesis.",
        category: ServiceCategory::ResearchSupport,
        audience: STUDENTS,
        modes: &[m(Consultation, InPerson, 0.4, true), m(Consultation, Web, 0.4, true), m(Workshop, Web, 0.2, true)],
        branches: &[MAIN, HEALTH, LAW],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.2,
        frequency: 1.2,
        quality: 0.7,
        rating_rate: 0.28,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "SYS-REVIEW",
        name: "Systematic review support",
        description: "Search strategies, protocol registration and deduplication for systematic and \
                      scoping reviews in the health sciences.",
        category: ServiceCategory::ResearchSupport,
        audience: &[Faculty, StaffMember, OnCampusStudent],
        modes: &[m(Consultation, Web, 0.6, true), m(Consultation, InPerson, 0.4, true)],
        branches: &[HEALTH],
        staff: &["Fatima Al-Sayed"],
        schedule: Schedule::Open,
        reach: 0.06,
        frequency: 1.5,
        quality: 0.8,
        rating_rate: 0.30,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "COURSE-RESERVES",
        name: "Course reserves",
        description: "Short-loan copies and scanned readings for the courses of this term.",
        category: ServiceCategory::Loans,
        audience: STUDENTS,
        modes: &[m(Loan, InPerson, 0.6, false), m(EResourceAccess, Web, 0.4, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.5,
        frequency: 1.8,
        quality: 0.0,
        rating_rate: 0.05,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "PUBLIC-PC",
        name: "Public computers and printing",
        description: "Walk-in computers with office software, printing, copying and scanning.",
        category: ServiceCategory::Spaces,
        audience: &[],
        modes: &[m(Visit, InPerson, 1.0, false)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.5,
        frequency: 2.0,
        quality: -0.2,
        rating_rate: 0.06,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "ACCESS-TECH",
        name: "Accessibility technology lab",
        description: "Screen readers, magnifiers, text-to-speech and height-adjustable desks, with \
                      one-to-one set-up help.",
        category: ServiceCategory::Spaces,
        audience: &[],
        modes: &[m(Visit, InPerson, 0.6, false), m(Consultation, InPerson, 0.4, true)],
        branches: &[MAIN],
        staff: &["Samuel Osei"],
        schedule: Schedule::Open,
        reach: 0.02,
        frequency: 3.0,
        quality: 0.8,
        rating_rate: 0.22,
        retired_days_ago: None,
    },
    ServiceSpec {
        code: "TEXT-REF",
        name: "Text a librarian (SMS)",
        description: "Short questions answered by text message. Retired: use Ask a Librarian chat.",
        category: ServiceCategory::Reference,
        audience: &[],
        modes: &[m(ReferenceQuestion, Sms, 1.0, true)],
        branches: &[],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.15,
        frequency: 1.0,
        quality: 0.1,
        rating_rate: 0.06,
        retired_days_ago: Some(420),
    },
    ServiceSpec {
        code: "MICROFILM",
        name: "Microfilm and microfiche readers",
        description: "Reader-printers for newspapers and archives on film. Retired after digitisation.",
        category: ServiceCategory::Spaces,
        audience: &[],
        modes: &[m(Visit, InPerson, 1.0, false)],
        branches: &[MAIN],
        staff: &[],
        schedule: Schedule::Open,
        reach: 0.04,
        frequency: 1.0,
        quality: -0.2,
        rating_rate: 0.06,
        retired_days_ago: Some(300),
    },
];

/// The index of the service with this code.
pub fn service_index(code: &str) -> Option<usize> {
    SERVICES.iter().position(|s| s.code == code)
}

/// A group of services that tend to be used together: the source of co-usage structure.
#[derive(Debug, Clone, Copy)]
pub struct Persona {
    pub services: &'static [&'static str],
}

pub const PERSONAS: &[Persona] = &[
    // 0: online scholar.
    Persona {
        services: &[
            "E-JOURNALS",
            "DATABASES",
            "CHAT-REF",
            "EMBEDDED",
            "ONLINE-ORIENT",
            "CITE-WS",
            "E-BOOKS",
            "EMAIL-REF",
        ],
    },
    // 1: campus studier.
    Persona {
        services: &[
            "STUDY-ROOMS",
            "LAPTOP-LOAN",
            "WRITING-CTR",
            "BOOK-LOAN",
            "COURSE-RESERVES",
            "TUTORING",
            "PUBLIC-PC",
            "REF-DESK",
        ],
    },
    // 2: researcher.
    Persona {
        services: &[
            "ILL",
            "RESEARCH-CONSULT",
            "DATA-GIS",
            "OA-PUB",
            "THESIS",
            "SYS-REVIEW",
            "DATABASES",
            "CITE-WS",
            "E-JOURNALS",
        ],
    },
    // 3: maker.
    Persona { services: &["MAKER", "EVENTS", "DATA-GIS", "LAPTOP-LOAN", "INFO-LIT"] },
    // 4: family.
    Persona { services: &["STORY-TIME", "HOMEWORK-HELP", "EVENTS", "BOOK-LOAN", "PUBLIC-PC", "REF-DESK", "E-BOOKS"] },
    // 5: career.
    Persona { services: &["ALUMNI-DB", "CAREER", "EVENTS", "E-BOOKS", "INFO-LIT"] },
];

/// How much more likely a patron is to take up a service of their persona.
pub const PERSONA_BOOST: f64 = 8.0;

/// Persona mix per patron type, as `(persona index, weight)`.
pub fn persona_mix(patron_type: PatronType) -> &'static [(usize, f64)] {
    match patron_type {
        OnlineLearner => &[(0, 0.72), (2, 0.12), (5, 0.16)],
        OnCampusStudent => &[(1, 0.62), (3, 0.14), (0, 0.12), (2, 0.12)],
        Faculty => &[(2, 0.78), (0, 0.22)],
        StaffMember => &[(2, 0.35), (1, 0.20), (3, 0.20), (5, 0.25)],
        Public => &[(4, 0.40), (5, 0.30), (3, 0.30)],
        Alumni => &[(5, 0.70), (0, 0.20), (3, 0.10)],
        Child => &[(4, 0.88), (3, 0.12)],
    }
}

/// Services a tag makes more likely, as `(tag, service code, factor)`.
pub const TAG_BOOSTS: &[(&str, &str, f64)] = &[
    ("accessibility", "ACCESS-TECH", 150.0),
    ("international", "WRITING-CTR", 3.0),
    ("first-generation", "TUTORING", 3.0),
    ("first-generation", "WRITING-CTR", 2.0),
    ("distance", "EMBEDDED", 2.0),
    ("distance", "CHAT-REF", 2.0),
    ("veteran", "CAREER", 3.0),
    ("honours", "THESIS", 3.0),
    ("honours", "RESEARCH-CONSULT", 2.0),
    ("part-time", "CHAT-REF", 1.5),
];

/// Services a home branch makes more likely, as `(branch, service code, factor)`.
pub const BRANCH_BOOSTS: &[(&str, &str, f64)] =
    &[(HEALTH, "SYS-REVIEW", 5.0), (SCIENCE, "DATA-GIS", 2.5), (SCIENCE, "MAKER", 2.0), (LAW, "DATABASES", 1.5)];

/// The staff team of each branch (`Online` answers chat, email and course spaces).
pub fn branch_team(branch: &str) -> &'static [&'static str] {
    match branch {
        MAIN => &["Grace Mensah", "Priya Raman", "Liam O'Connor", "Yuki Tanaka", "Tomás Herrera"],
        SCIENCE => &["Helena Vogt", "Kwame Asante", "Sofia Rossi"],
        HEALTH => &["Fatima Al-Sayed", "Daniel Kim", "Ingrid Larsen"],
        LAW => &["Margaret Byrne", "Arjun Mehta"],
        _ => &["Chloé Dubois", "Samuel Osei", "Mei Lin", "Rafael Costa"],
    }
}

/// A grant: one funding row, in year `year` (0 = the year starting with the demo history).
#[derive(Debug, Clone, Copy)]
pub struct GrantSpec {
    pub service: &'static str,
    pub reference: &'static str,
    pub year: u32,
    /// In major units of the funder's currency.
    pub amount: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct FunderSpec {
    pub name: &'static str,
    pub kind: FunderKind,
    pub contact_email: &'static str,
    pub website: &'static str,
    pub notes: &'static str,
    pub currency: &'static str,
    pub grants: &'static [GrantSpec],
}

const fn g(service: &'static str, reference: &'static str, year: u32, amount: i64) -> GrantSpec {
    GrantSpec { service, reference, year, amount }
}

pub const FUNDERS: &[FunderSpec] = &[
    FunderSpec {
        name: "Department of Education – Digital Learning Fund",
        kind: FunderKind::Government,
        contact_email: "digital-learning@education.example.gov",
        website: "https://education.example.gov/digital-learning",
        notes: "Funds library support for distance and online learners. Quarterly reports on reach \
                and use by learner group.",
        currency: "USD",
        grants: &[
            g("EMBEDDED", "DLF embedded librarianship", 0, 48_000),
            g("EMBEDDED", "DLF embedded librarianship", 1, 52_000),
            g("EMBEDDED", "DLF embedded librarianship", 2, 55_000),
            g("ONLINE-ORIENT", "DLF online orientation", 1, 12_500),
        ],
    },
    FunderSpec {
        name: "Harbour Light Foundation",
        kind: FunderKind::Foundation,
        contact_email: "grants@harbourlight.example.org",
        website: "https://harbourlight.example.org",
        notes: "Student success grants; interested in first-generation and international students.",
        currency: "USD",
        grants: &[g("WRITING-CTR", "HLF writing centre", 0, 30_000), g("WRITING-CTR", "HLF writing centre", 1, 32_000)],
    },
    FunderSpec {
        name: "Meridian Literacy Trust",
        kind: FunderKind::Foundation,
        contact_email: "programmes@meridian-literacy.example.eu",
        website: "https://meridian-literacy.example.eu",
        notes: "Early literacy and family learning. Reports twice a year, in euros.",
        currency: "EUR",
        grants: &[
            g("STORY-TIME", "MLT early literacy", 0, 8_000),
            g("STORY-TIME", "MLT early literacy", 1, 8_500),
            g("HOMEWORK-HELP", "MLT homework club", 1, 6_000),
        ],
    },
    FunderSpec {
        name: "The Whitfield Bequest",
        kind: FunderKind::Donor,
        contact_email: "executors@whitfield-estate.example.com",
        website: "https://whitfield-estate.example.com",
        notes: "Bequest of Eleanor Whitfield for accessible library spaces; annual letter to the executors.",
        currency: "USD",
        grants: &[
            g("ACCESS-TECH", "Whitfield accessibility", 0, 15_000),
            g("ACCESS-TECH", "Whitfield accessibility", 1, 15_000),
        ],
    },
    FunderSpec {
        name: "Northwind Analytics",
        kind: FunderKind::Company,
        contact_email: "community@northwind-analytics.example.com",
        website: "https://northwind-analytics.example.com",
        notes: "Corporate sponsorship of data skills; logo on the data help pages.",
        currency: "USD",
        grants: &[g("DATA-GIS", "Northwind data skills", 0, 20_000), g("DATA-GIS", "Northwind data skills", 1, 22_000)],
    },
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn references_resolve_and_codes_are_unique() {
        let codes: HashSet<&str> = SERVICES.iter().map(|s| s.code).collect();
        assert_eq!(codes.len(), SERVICES.len());
        for (i, persona) in PERSONAS.iter().enumerate() {
            for code in persona.services {
                assert!(service_index(code).is_some(), "persona {i} names {code}");
            }
        }
        for (_, code, _) in TAG_BOOSTS.iter().chain(BRANCH_BOOSTS) {
            assert!(service_index(code).is_some(), "boost names {code}");
        }
        for funder in FUNDERS {
            for grant in funder.grants {
                assert!(service_index(grant.service).is_some(), "grant names {}", grant.service);
            }
        }
        for t in PatronType::ALL {
            assert!(persona_mix(*t).iter().all(|(p, _)| *p < PERSONAS.len()));
        }
    }

    #[test]
    fn every_service_has_modes_consistent_with_its_branches() {
        for s in SERVICES {
            assert!(!s.modes.is_empty(), "{}", s.code);
            assert!(s.branches.iter().all(|b| PHYSICAL_BRANCHES.contains(b)), "{}", s.code);
        }
    }
}
