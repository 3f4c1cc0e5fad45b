//! The indicators the classifier reports, declared once: each with its
//! `indicator` column name and its MITRE ATT&CK ids. Its own module so that
//! the tool tables (`ticket_tools`) and the classifier both use it without
//! importing each other.

/// The rule's MITRE mapping, kept exactly as Elastic has it.
pub const CREDENTIAL_CACHE_COPY_TECHNIQUE: &str = "T1003,T1558,T1558.003,T1558.005";

/// Declares [`Indicator`] from one table: each variant with its `indicator`
/// column name and its MITRE ATT&CK ids, so the enum, [`Indicator::ALL`],
/// the names and the techniques cannot drift apart.
macro_rules! indicators {
    ($($variant:ident => $name:literal, $techniques:expr;)+) => {
        /// What the classifier reports. The order is the output order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Indicator {
            $($variant,)+
        }

        impl Indicator {
            /// Every indicator, in output order.
            pub const ALL: [Indicator; [$(Indicator::$variant),+].len()] =
                [$(Indicator::$variant),+];

            /// The `indicator` column value.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Indicator::$variant => $name,)+
                }
            }

            /// MITRE ATT&CK ids, comma-separated.
            pub const fn technique(self) -> &'static str {
                match self {
                    $(Indicator::$variant => $techniques,)+
                }
            }
        }
    };
}

indicators! {
    CredentialCacheCopy => "credential_cache_copy", CREDENTIAL_CACHE_COPY_TECHNIQUE;
    CredentialDump => "credential_dump", "T1003,T1558.005";
    Kerberoasting => "kerberoasting", "T1558.003";
    ForgedKeytabKey => "forged_keytab_key", "T1550.002";
    ForgedKeytabUse => "forged_keytab_use", "T1550.002";
    BifrostDump => "bifrost_dump", "T1558.005,T1552.001";
    BifrostKerberoast => "bifrost_kerberoast", "T1558.003";
    BifrostAsktgt => "bifrost_asktgt", "T1550.002";
    BifrostAsktgs => "bifrost_asktgs", "T1550.003";
    BifrostAskhash => "bifrost_askhash", "T1550.002";
    BifrostS4u => "bifrost_s4u", "T1558,T1550.003";
    BifrostPtt => "bifrost_ptt", "T1550.003";
    CcacheFileAccess => "ccache_file_access", "T1558.005";
    ForeignCcacheAccess => "foreign_ccache_access", "T1558.005";
    CcacheReplay => "ccache_replay", "T1550.003";
    KerberosTicketTool => "kerberos_ticket_tool", "T1558,T1550.003";
    KerberosBruteforceTool => "kerberos_bruteforce_tool", "T1110,T1087.002";
    RenamedKerberosTool => "renamed_kerberos_tool", "T1036.003";
    UnverifiedKerberosTool => "unverified_kerberos_tool", "T1036";
    FilelessExec => "fileless_exec", "T1620";
    UnresolvedExePath => "unresolved_exe_path", "T1564";
}

/// Indicator for Elastic's rule: kcc copying tickets out of a cache.
pub const CREDENTIAL_CACHE_COPY: &str = Indicator::CredentialCacheCopy.name();

// The set is a `u32` bit mask.
const _: () = assert!(Indicator::ALL.len() <= 32);

impl Indicator {
    /// The indicator a column name stands for: only for text read from
    /// outside (a journal, a query constraint, a corpus file).
    pub fn from_name(name: &str) -> Option<Indicator> {
        Indicator::ALL.into_iter().find(|i| i.name() == name)
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// A set of indicators; iterates in [`Indicator::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct IndicatorSet(u32);

impl IndicatorSet {
    /// The set holding only `indicator`.
    pub const fn only(indicator: Indicator) -> IndicatorSet {
        IndicatorSet(indicator.bit())
    }

    /// The set an `indicator` column value names (a row's text, perhaps
    /// read back from the journal); names this build does not know are left
    /// out.
    pub(crate) fn from_names(names: &str) -> IndicatorSet {
        let mut set = IndicatorSet::default();
        for i in names.split(',').filter_map(Indicator::from_name) {
            set.insert(i);
        }
        set
    }

    pub fn insert(&mut self, indicator: Indicator) {
        self.0 |= indicator.bit();
    }

    pub fn contains(self, indicator: Indicator) -> bool {
        self.0 & indicator.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Indicator> {
        Indicator::ALL
            .into_iter()
            .filter(move |i| self.contains(*i))
    }

    /// The `indicator` column: names, comma-joined.
    pub fn names(self) -> String {
        let mut out = String::new();
        for i in self.iter() {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(i.name());
        }
        out
    }

    /// The `technique` column: every id once, in first-seen order.
    pub(crate) fn techniques(self) -> String {
        let mut out = String::new();
        for t in self.iter().flat_map(|i| i.technique().split(',')) {
            if !out.split(',').any(|seen| seen == t) {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(t);
            }
        }
        out
    }
}
