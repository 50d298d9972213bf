/// The live page served at `GET /`.
enum AdminPage {
    static let html = "<html></html>"
}
