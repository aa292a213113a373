use kommerce_kit::http::ApiError;
use kommerce_kit::validate::{Fields, text};
use serde::Deserialize;
use utoipa::ToSchema;

/// A syntactically valid e-mail address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, String> {
        let e = input.trim().to_lowercase();
        let bad = || Err("must be an e-mail address like name@example.com".to_owned());
        if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad();
        }
        let Some((local, domain)) = e.rsplit_once('@') else {
            return bad();
        };
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return bad();
        }
        Ok(Self(e))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plain-text password that meets the length rule. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 10;
    /// Bounded so that hashing cannot be used to burn CPU.
    pub const MAX_CHARS: usize = 128;

    pub fn parse(input: &str) -> Result<Self, String> {
        let n = input.chars().count();
        if n < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if n > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A phone number: an optional leading `+` and 7 to 15 digits; spaces, dashes, dots and
/// parentheses are accepted as separators and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(input: &str) -> Result<Self, String> {
        let t = input.trim();
        let (plus, rest) = t.strip_prefix('+').map_or(("", t), |r| ("+", r));
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(
                        "must contain only digits, an optional leading +, and separators".into(),
                    );
                }
            }
        }
        if !(7..=15).contains(&digits.len()) {
            return Err("must have 7 to 15 digits".into());
        }
        Ok(Self(format!("{plus}{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn person_name(input: &str) -> Result<String, String> {
    text(input, 1, 100)
}

/// A new customer account. Text is trimmed first; lengths count characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    /// An e-mail address (at most 254 bytes, the part before `@` at most 64) that no account
    /// has yet, whatever its case; stored lower-cased.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 128 characters, taken as sent (not trimmed).
    #[schema(min_length = 10, max_length = 128)]
    pub password: String,
    /// 1 to 100 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// An optional leading `+` and 7 to 15 digits; spaces, dashes, dots and parentheses are
    /// accepted as separators and removed.
    #[schema(pattern = r"^ *\+?[ .()-]*(?:[0-9][ .()-]*){7,15}$")]
    pub phone: String,
}

/// A signup that passed every rule.
#[derive(Debug)]
pub struct NewUser {
    pub email: Email,
    pub password: Password,
    pub name: String,
    pub phone: Phone,
}

impl TryFrom<SignupBody> for NewUser {
    type Error = ApiError;

    fn try_from(b: SignupBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let email = f.check("email", Email::parse(&b.email));
        let password = f.check("password", Password::parse(&b.password));
        let name = f.check("name", person_name(&b.name));
        let phone = f.check("phone", Phone::parse(&b.phone));
        f.finish()?;
        match (email, password, name, phone) {
            (Some(email), Some(password), Some(name), Some(phone)) => Ok(Self {
                email,
                password,
                name,
                phone,
            }),
            _ => Err(ApiError::internal("validation passed without values")),
        }
    }
}

/// A change to the caller's profile: any of `name`, `phone` and `new_password` (at least one);
/// `new_password` needs `current_password`, and `current_password` needs `new_password`.
/// An absent or `null` field stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// 1 to 100 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    /// An optional leading `+` and 7 to 15 digits; spaces, dashes, dots and parentheses are
    /// accepted as separators and removed.
    #[schema(pattern = r"^ *\+?[ .()-]*(?:[0-9][ .()-]*){7,15}$")]
    pub phone: Option<String>,
    /// The password now in use: a wrong one is a 422 naming it.
    pub current_password: Option<String>,
    /// 10 to 128 characters, taken as sent. Ends every other session of the caller.
    #[schema(min_length = 10, max_length = 128)]
    pub new_password: Option<String>,
}

#[derive(Debug)]
pub struct PasswordChange {
    pub current: String,
    pub new: Password,
}

/// A profile change: any of name and phone, and a password change that names the current one.
#[derive(Debug)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub phone: Option<Phone>,
    pub password: Option<PasswordChange>,
}

impl TryFrom<ProfileBody> for ProfilePatch {
    type Error = ApiError;

    fn try_from(b: ProfileBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let name = f.check_opt("name", b.name.as_deref(), person_name);
        let phone = f.check_opt("phone", b.phone.as_deref(), Phone::parse);
        let new = f.check_opt("new_password", b.new_password.as_deref(), Password::parse);
        match (&b.current_password, &b.new_password) {
            (None, Some(_)) => f.add("current_password", "is required to change the password"),
            (Some(_), None) => f.add("new_password", "is required with current_password"),
            _ => {}
        }
        if b.name.is_none() && b.phone.is_none() && b.new_password.is_none() {
            f.add(
                "body",
                "nothing to change: give name, phone or new_password",
            );
        }
        f.finish()?;
        let password = match (b.current_password, new.flatten()) {
            (Some(current), Some(new)) => Some(PasswordChange { current, new }),
            _ => None,
        };
        Ok(Self {
            name: name.flatten(),
            phone: phone.flatten(),
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "  Ada.Lovelace+shop@Example.COM ",
            "x@sub.domain.org",
            "ü@exämple.de",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Email::parse(" A@B.Co ").unwrap().as_str(), "a@b.co");
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@b..co", "a@.b.co", "a@b.co.", "a@@b.co",
            "a@b_c.de",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@b.co", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("123456789").is_err());
        assert!(Password::parse("1234567890").is_ok());
        assert!(Password::parse("ééééééééé").is_err(), "counts characters");
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(!format!("{:?}", Password::parse("secretsecret").unwrap()).contains("secret"));
    }

    #[test]
    fn phones() {
        let cases = [
            ("+49 30 1234567", Ok("+49301234567")),
            ("(030) 123-4567", Ok("0301234567")),
            ("123456", Err(())),
            ("+1234567890123456", Err(())),
            ("12345678a", Err(())),
            ("++1234567", Err(())),
        ];
        for (input, want) in cases {
            let got = Phone::parse(input)
                .map(|p| p.as_str().to_owned())
                .map_err(|_| ());
            assert_eq!(got, want.map(str::to_owned), "{input}");
        }
    }

    #[test]
    fn signup_names_every_bad_field() {
        let body = SignupBody {
            email: "nope".into(),
            password: "short".into(),
            name: " ".into(),
            phone: "12".into(),
        };
        let Err(ApiError::Validation(errors)) = NewUser::try_from(body) else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name", "phone"]);
    }

    #[test]
    fn password_change_needs_both_passwords() {
        let body = |cur: Option<&str>, new: Option<&str>| ProfileBody {
            name: None,
            phone: None,
            current_password: cur.map(Into::into),
            new_password: new.map(Into::into),
        };
        assert!(ProfilePatch::try_from(body(None, Some("0123456789"))).is_err());
        assert!(ProfilePatch::try_from(body(Some("0123456789"), None)).is_err());
        assert!(
            ProfilePatch::try_from(body(None, None)).is_err(),
            "empty patch"
        );
        let p = ProfilePatch::try_from(body(Some("old"), Some("0123456789"))).unwrap();
        assert_eq!(p.password.unwrap().new.expose(), "0123456789");
    }
}
