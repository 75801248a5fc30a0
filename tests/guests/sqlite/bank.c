/* A SQLite bank in a volume (issue 10's end-to-end guest): transactions whose committed ids it prints.
 *   bank wal|delete DB LAST PAUSE_MS [PAD]   open DB (journal_mode=WAL with locking_mode=EXCLUSIVE, or the DELETE
 *       rollback journal; synchronous=FULL), print "resume from N" (N = the highest id in it, 0 for a new one), then
 *       until id LAST: one transaction inserting row id = N+1 with the wall-clock time in ns (so a transaction run
 *       twice leaves a different row than the one printed) and PAD random bytes, and adding the id to the balance;
 *       commit, print "committed ID T" (flushed), sleep PAUSE_MS. The id comes from memory and is checked against
 *       the database's max in the transaction: memory and disk disagreeing (a volume behind or ahead of the
 *       checkpoint) prints "MISMATCH ..." and exits 3. At LAST prints "done" and exits 0.
 *   bank check DB   PRAGMA integrity_check (each line "integrity LINE"), "balance ok|BAD", then "row ID T" per row.
 * Link: gcc -static -O2 bank.c -lsqlite3 -lm -lpthread. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static sqlite3 *db;

static void die(const char *what)
{
    printf("error %s: %s (extended code %d)\n", what, db ? sqlite3_errmsg(db) : "?", db ? sqlite3_extended_errcode(db) : 0);
    fflush(stdout);
    exit(2);
}

static void exec(const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        printf("error %s: %s\n", sql, err ? err : "?");
        fflush(stdout);
        exit(2);
    }
}

static long long scalar(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) die(sql);
    long long v = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE) die(sql);
    sqlite3_finalize(st);
    return v;
}

static int check(void)
{
    exec("PRAGMA locking_mode=EXCLUSIVE"); /* a WAL left behind without a -shm: read it with the heap index */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) die("integrity_check");
    while (sqlite3_step(st) == SQLITE_ROW) printf("integrity %s\n", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    long long sum = scalar("SELECT coalesce(sum(id), 0) FROM ledger");
    long long balance = scalar("SELECT balance FROM account WHERE id = 1");
    printf("balance %s\n", sum == balance ? "ok" : "BAD");
    if (sqlite3_prepare_v2(db, "SELECT id, t FROM ledger ORDER BY id", -1, &st, NULL) != SQLITE_OK) die("rows");
    while (sqlite3_step(st) == SQLITE_ROW)
        printf("row %lld %lld\n", (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bank wal|delete DB LAST PAUSE_MS [PAD] | bank check DB\n");
        return 1;
    }
    const char *mode = argv[1];
    if (sqlite3_open(argv[2], &db) != SQLITE_OK) die("open");
    sqlite3_busy_timeout(db, 0);
    if (strcmp(mode, "check") == 0) return check();
    if (argc < 5) return 1;
    long long last = atoll(argv[3]);
    int pause_ms = atoi(argv[4]);
    int pad = argc > 5 ? atoi(argv[5]) : 200;

    if (strcmp(mode, "wal") == 0) {
        /* MAP_SHARED of volume files is refused, so the WAL index lives in the heap: exclusive locking. */
        exec("PRAGMA locking_mode=EXCLUSIVE");
        exec("PRAGMA journal_mode=WAL");
    } else if (strcmp(mode, "delete") == 0) {
        exec("PRAGMA journal_mode=DELETE");
    } else {
        return 1;
    }
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE IF NOT EXISTS ledger(id INTEGER PRIMARY KEY, t INTEGER NOT NULL, pad BLOB)");
    exec("CREATE TABLE IF NOT EXISTS account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
    exec("INSERT OR IGNORE INTO account(id, balance) VALUES (1, 0)");

    long long id = scalar("SELECT coalesce(max(id), 0) FROM ledger");
    printf("resume from %lld\n", id);
    fflush(stdout);

    sqlite3_stmt *ins, *upd, *max;
    if (sqlite3_prepare_v2(db, "INSERT INTO ledger(id, t, pad) VALUES (?1, ?2, randomblob(?3))", -1, &ins, NULL) != SQLITE_OK) die("prepare insert");
    if (sqlite3_prepare_v2(db, "UPDATE account SET balance = balance + ?1 WHERE id = 1", -1, &upd, NULL) != SQLITE_OK) die("prepare update");
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM ledger", -1, &max, NULL) != SQLITE_OK) die("prepare max");
    while (id < last) {
        exec("BEGIN IMMEDIATE");
        if (sqlite3_step(max) != SQLITE_ROW) die("max");
        long long on_disk = sqlite3_column_int64(max, 0);
        sqlite3_reset(max);
        if (on_disk != id) {
            printf("MISMATCH memory %lld disk %lld\n", id, on_disk);
            fflush(stdout);
            return 3;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long t = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        sqlite3_bind_int64(ins, 1, id + 1);
        sqlite3_bind_int64(ins, 2, t);
        sqlite3_bind_int(ins, 3, pad);
        if (sqlite3_step(ins) != SQLITE_DONE) die("insert");
        sqlite3_reset(ins);
        sqlite3_bind_int64(upd, 1, id + 1);
        if (sqlite3_step(upd) != SQLITE_DONE) die("update");
        sqlite3_reset(upd);
        exec("COMMIT");
        id++;
        printf("committed %lld %lld\n", id, t);
        fflush(stdout);
        if (pause_ms > 0) usleep(pause_ms * 1000);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    sqlite3_finalize(max);
    if (sqlite3_close(db) != SQLITE_OK) die("close");
    printf("done\n");
    return 0;
}
