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
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $techniques:expr;)+) => {
        /// What the classifier reports. The order is the output order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Indicator {
            $($(#[$doc])* $variant,)+
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

// Each variant's trigger in one line; the full table, with false positives
// and exceptions, is docs/indicators.md.
indicators! {
    /// kcc runs `copy_cred_cache` (or any unique abbreviation, any case), or
    /// Elastic's own test matches: the rule this extension reproduces.
    CredentialCacheCopy => "credential_cache_copy", CREDENTIAL_CACHE_COPY_TECHNIQUE;
    /// kcc runs `dump-credentials` (or an abbreviation).
    CredentialDump => "credential_dump", "T1003,T1558.005";
    /// kgetcred or kvno asks for an RC4 ticket (`arcfour-hmac-md5`,
    /// `rc4-hmac`, `23`, …).
    Kerberoasting => "kerberoasting", "T1558.003";
    /// ktutil `add … --hex`: a raw key (e.g. an NT hash) written into a keytab.
    ForgedKeytabKey => "forged_keytab_key", "T1550.002";
    /// kinit with a keytab that ktutil filled from `--hex` shortly before
    /// (same keytab, or same uid); raised by the keytab correlator.
    ForgedKeytabUse => "forged_keytab_use", "T1550.002";
    /// bifrost `-action dump` of `tickets` or `keytab`.
    BifrostDump => "bifrost_dump", "T1558.005,T1552.001";
    /// bifrost kerberoasting: `-action` with `-kerberoast`, or
    /// `-action kerberoast`.
    BifrostKerberoast => "bifrost_kerberoast", "T1558.003";
    /// bifrost `-action asktgt`: a TGT from a password, hash or keytab entry.
    BifrostAsktgt => "bifrost_asktgt", "T1550.002";
    /// bifrost `-action asktgs` without `-kerberoast`: a service ticket from
    /// a supplied TGT.
    BifrostAsktgs => "bifrost_asktgs", "T1550.003";
    /// bifrost `-action askhash`: Kerberos keys computed from a password.
    BifrostAskhash => "bifrost_askhash", "T1550.002";
    /// bifrost `-action s4u`: a ticket as another user through delegation.
    BifrostS4u => "bifrost_s4u", "T1558,T1550.003";
    /// bifrost `-action ptt`: a ticket imported into a cache.
    BifrostPtt => "bifrost_ptt", "T1550.003";
    /// A program that is no Kerberos tool names a credential cache in its
    /// arguments (`cp /tmp/krb5cc_1000 …`), or root's Kerberos tool names
    /// another user's cache. Names only, no stat.
    CcacheFileAccess => "ccache_file_access", "T1558.005";
    /// The uid in a cache name (`krb5cc_<uid>`, `KCM:<uid>`, …) is neither
    /// the process's uid nor euid, nor root: cross-user theft.
    ForeignCcacheAccess => "foreign_ccache_access", "T1558.005";
    /// The exec's `KRB5CCNAME` names another user's cache, a world-writable
    /// directory (both found by the classifier), or a cache an earlier
    /// copy/read row named (found by the engine, which holds the store).
    CcacheReplay => "ccache_replay", "T1550.003";
    /// An impacket ticket script (`getTGT.py`, `ticketer.py`, …) or Rubeus.
    KerberosTicketTool => "kerberos_ticket_tool", "T1558,T1550.003";
    /// kerbrute.
    KerberosBruteforceTool => "kerberos_bruteforce_tool", "T1110,T1087.002";
    /// The executable is kcc by code identity (signing id or hash) but runs
    /// under another name; added to the command's own indicators.
    RenamedKerberosTool => "renamed_kerberos_tool", "T1036.003";
    /// kcc's `copy_cred_cache` or `dump-credentials`, in full, from a binary
    /// not known to be kcc by name or identity.
    UnverifiedKerberosTool => "unverified_kerberos_tool", "T1036";
    /// A Kerberos-shaped exec from a memfd, a deleted file, `/dev/shm` or a
    /// file descriptor path.
    FilelessExec => "fileless_exec", "T1620";
    /// A Kerberos-shaped exec whose path the source could not give (audit's
    /// `<too_long>`, none); the name comes from argv\[0\].
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

    /// Adds `indicator`; adding one already there changes nothing.
    pub fn insert(&mut self, indicator: Indicator) {
        self.0 |= indicator.bit();
    }

    /// Whether `indicator` is in the set.
    pub fn contains(self, indicator: Indicator) -> bool {
        self.0 & indicator.bit() != 0
    }

    /// Whether the set is empty, i.e. the exec is benign.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The indicators in the set, in [`Indicator::ALL`] (output) order.
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
