fn main() {
    std::process::exit(kerberos_cache_access::cli::main());
}
