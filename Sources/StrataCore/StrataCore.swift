/// The Strata domain: dataset events, commands and the decider that turns one into the other.
///
/// This module does no I/O and reads no clock: ids and times come in with each command, so every
/// rule here is tested without a database.
public enum StrataCore {}
