// What DBeaver, Metabase and Splunk DB Connect do through pgjdbc, against `auditlake serve`:
// list the tables through DatabaseMetaData, list a view's columns, count the view's rows.
//
// Usage: java -cp /usr/share/java/postgresql.jar tests/PgJdbcProbe.java JDBC_URL USER PASSWORD VIEW
// Prints `table NAME TYPE`, `column NAME TYPE_NAME` and `count N` lines; tests/serve_clients.py
// checks them. Any exception ends it with exit code 1 (Java prints the stack trace).
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;

public class PgJdbcProbe {
    public static void main(String[] args) throws Exception {
        String url = args[0], user = args[1], password = args[2], view = args[3];
        try (Connection conn = DriverManager.getConnection(url, user, password)) {
            DatabaseMetaData md = conn.getMetaData();
            System.out.println("product " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet rs = md.getTables(null, "public", "%", null)) {
                while (rs.next()) {
                    System.out.println("table " + rs.getString("TABLE_NAME") + " " + rs.getString("TABLE_TYPE"));
                }
            }
            try (ResultSet rs = md.getColumns(null, "public", view, "%")) {
                while (rs.next()) {
                    System.out.println("column " + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
                }
            }
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM " + view)) {
                rs.next();
                System.out.println("count " + rs.getLong(1));
            }
        }
    }
}
