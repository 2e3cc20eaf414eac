fn main() {
    println!("{}", ferrostream::version());
}
