//! Names for demo patrons, drawn from several cultures, and the e-mail addresses made from them.

use super::rng::{DemoRng, choose};
use rand::Rng;

/// First and last names that commonly go together.
struct Culture {
    first: &'static [&'static str],
    last: &'static [&'static str],
    weight: f64,
}

const CULTURES: &[Culture] = &[
    Culture {
        first: &[
            "Emma",
            "Olivia",
            "Liam",
            "Noah",
            "Ava",
            "James",
            "Charlotte",
            "Henry",
            "Grace",
            "Jack",
            "Chloe",
            "Samuel",
            "Hannah",
            "Ethan",
            "Lucy",
            "Oliver",
            "Megan",
            "Thomas",
            "Ruby",
            "Daniel",
        ],
        last: &[
            "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Clarke", "Walker", "Wright", "Thompson",
            "Hughes", "Edwards", "Green", "Hall", "Murphy", "O'Brien", "Campbell", "Stewart", "Bennett", "Price",
        ],
        weight: 3.0,
    },
    Culture {
        first: &[
            "Sofía",
            "Mateo",
            "Valentina",
            "Santiago",
            "Camila",
            "Diego",
            "Lucía",
            "Javier",
            "Isabella",
            "Alejandro",
            "Mariana",
            "Andrés",
            "Gabriela",
            "Carlos",
            "Daniela",
        ],
        last: &[
            "García",
            "Rodríguez",
            "Martínez",
            "Hernández",
            "López",
            "González",
            "Pérez",
            "Sánchez",
            "Ramírez",
            "Torres",
            "Flores",
            "Rivera",
            "Morales",
            "Castillo",
        ],
        weight: 1.6,
    },
    Culture {
        first: &["Wei", "Jing", "Hao", "Xiu Ying", "Min", "Yan", "Jun", "Li Na", "Zhi", "Mei", "Lei", "Yu"],
        last: &["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Lin"],
        weight: 1.3,
    },
    Culture {
        first: &[
            "Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Divya", "Arjun", "Kavya", "Rahul", "Sneha", "Ishaan",
            "Meera", "Sanjay", "Lakshmi",
        ],
        last: &[
            "Sharma", "Patel", "Singh", "Kumar", "Gupta", "Iyer", "Reddy", "Nair", "Desai", "Mehta", "Rao", "Joshi",
        ],
        weight: 1.4,
    },
    Culture {
        first: &[
            "Chinedu",
            "Amara",
            "Ngozi",
            "Kwame",
            "Ama",
            "Oluwaseun",
            "Folake",
            "Kofi",
            "Adaeze",
            "Tunde",
            "Abena",
            "Emeka",
            "Zainab",
            "Yaw",
        ],
        last: &[
            "Okafor", "Adeyemi", "Mensah", "Okonkwo", "Boateng", "Eze", "Owusu", "Balogun", "Nwosu", "Asante",
            "Adebayo", "Osei",
        ],
        weight: 1.1,
    },
    Culture {
        first: &[
            "Omar", "Layla", "Youssef", "Fatima", "Karim", "Noor", "Hassan", "Amira", "Tariq", "Salma", "Ali", "Rania",
        ],
        last: &["Haddad", "Khalil", "Mansour", "Al-Sayed", "Nasser", "Saleh", "Farouk", "Hamdan", "Aziz", "Rahman"],
        weight: 1.0,
    },
    Culture {
        first: &[
            "Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "Minjun", "Seoyeon", "Jiwoo", "Hyun", "Sakura", "Daiki",
        ],
        last: &["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Kim", "Lee", "Park", "Choi", "Jung", "Yamamoto"],
        weight: 0.9,
    },
    Culture {
        first: &["Linh", "Minh", "Thao", "Duc", "Anh", "Khoa", "Mai", "Tuan", "Lan", "Quang"],
        last: &["Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do"],
        weight: 0.6,
    },
    Culture {
        first: &[
            "Lukas", "Anna", "Jonas", "Lena", "Felix", "Sophie", "Mathilde", "Louis", "Élodie", "Hugo", "Giulia",
            "Marco", "Chiara", "Luca", "Zoë",
        ],
        last: &[
            "Müller", "Schmidt", "Weber", "Fischer", "Dubois", "Lefèvre", "Moreau", "Rossi", "Bianchi", "Romano",
            "Conti", "Becker",
        ],
        weight: 1.2,
    },
    Culture {
        first: &["Astrid", "Søren", "Ingrid", "Erik", "Freya", "Magnus", "Sigrid", "Lars", "Maja", "Anders"],
        last: &["Larsen", "Johansson", "Nielsen", "Andersen", "Lindqvist", "Berg", "Hansen", "Eriksson", "Dahl"],
        weight: 0.6,
    },
    Culture {
        first: &["Zofia", "Jakub", "Katarzyna", "Piotr", "Olena", "Dmytro", "Natalia", "Tomasz", "Irina", "Pavel"],
        last: &["Kowalski", "Nowak", "Wiśniewska", "Shevchenko", "Kovalenko", "Zieliński", "Ivanova", "Novák"],
        weight: 0.7,
    },
    Culture {
        first: &["Elif", "Emre", "Zeynep", "Mehmet", "Ayşe", "Darius", "Shirin", "Reza", "Leila", "Cyrus"],
        last: &["Yılmaz", "Demir", "Kaya", "Şahin", "Çelik", "Hosseini", "Tehrani", "Karimi", "Ahmadi"],
        weight: 0.7,
    },
    Culture {
        first: &["Aroha", "Tane", "Mere", "Wiremu", "Sione", "Losa", "Kiri", "Malia", "Ana", "Tevita"],
        last: &["Ngata", "Parata", "Tuilagi", "Fonoti", "Walker", "Tamihana", "Faleolo", "Taufa"],
        weight: 0.4,
    },
];

/// A plausible full name: usually first and last name from one culture, sometimes mixed.
pub fn full_name(rng: &mut DemoRng) -> (String, String) {
    let weights: Vec<f64> = CULTURES.iter().map(|c| c.weight).collect();
    let first_culture = super::rng::weighted_index(rng, &weights).and_then(|i| CULTURES.get(i));
    let last_culture = if rng.random_bool(0.22) {
        super::rng::weighted_index(rng, &weights).and_then(|i| CULTURES.get(i))
    } else {
        first_culture
    };
    let first = first_culture.and_then(|c| choose(rng, c.first)).copied().unwrap_or("Alex");
    let last = last_culture.and_then(|c| choose(rng, c.last)).copied().unwrap_or("Morgan");
    (first.to_owned(), last.to_owned())
}

/// The ASCII local-part form of a name: accents folded, other characters dropped.
pub fn email_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'ē' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'ı' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ō' | 'ő' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'ū' => 'u',
            'ç' | 'č' | 'ć' => 'c',
            'ñ' | 'ń' => 'n',
            'ś' | 'š' | 'ş' => 's',
            'ł' => 'l',
            'ğ' => 'g',
            'ž' | 'ź' | 'ż' => 'z',
            'ř' => 'r',
            c if c.is_ascii_alphanumeric() => c,
            _ => continue,
        };
        out.push(folded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_parts_are_ascii() {
        assert_eq!(email_part("O'Brien"), "obrien");
        assert_eq!(email_part("Wiśniewska"), "wisniewska");
        assert_eq!(email_part("Xiu Ying"), "xiuying");
        assert_eq!(email_part("Yılmaz"), "yilmaz");
        for culture in CULTURES {
            for name in culture.first.iter().chain(culture.last) {
                let part = email_part(name);
                assert!(!part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()), "{name} -> {part}");
            }
        }
    }
}
