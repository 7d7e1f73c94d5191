fn main() {
    print!("{}", switchboard_crds::all_crds_yaml().unwrap());
}
