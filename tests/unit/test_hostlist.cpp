#include <gtest/gtest.h>

#include "slurmlab/core/errors.hpp"
#include "slurmlab/cluster/hostlist.hpp"

using slurmlab::UsageError;
using slurmlab::cluster::compress_hostlist;
using slurmlab::cluster::expand_hostlist;
using Hosts = std::vector<std::string>;

TEST(Hostlist, SingleAndCommaSeparatedNames) {
  EXPECT_EQ(expand_hostlist("node1"), Hosts({"node1"}));
  EXPECT_EQ(expand_hostlist("x,y"), Hosts({"x", "y"}));
  EXPECT_EQ(expand_hostlist(""), Hosts{});
}

TEST(Hostlist, RangesAndListsInsideBrackets) {
  EXPECT_EQ(expand_hostlist("node[1-4,7]"), Hosts({"node1", "node2", "node3", "node4", "node7"}));
  EXPECT_EQ(expand_hostlist("x,y[2-3]"), Hosts({"x", "y2", "y3"}));
}

TEST(Hostlist, ZeroPaddingIsKept) {
  EXPECT_EQ(expand_hostlist("a[01-03]b"), Hosts({"a01b", "a02b", "a03b"}));
  EXPECT_EQ(expand_hostlist("n[08-10]"), Hosts({"n08", "n09", "n10"}));
  EXPECT_EQ(expand_hostlist("lrdn[0001-0002,0100]"), Hosts({"lrdn0001", "lrdn0002", "lrdn0100"}));
  // Without a leading zero there is no padding: n9 n10.
  EXPECT_EQ(expand_hostlist("n[9-10]"), Hosts({"n9", "n10"}));
}

TEST(Hostlist, SeveralBracketsVaryRightmostFastest) {
  EXPECT_EQ(expand_hostlist("r[1-2]n[1-2]"), Hosts({"r1n1", "r1n2", "r2n1", "r2n2"}));
  EXPECT_EQ(expand_hostlist("gpu[1-2],cpu[05-06]"), Hosts({"gpu1", "gpu2", "cpu05", "cpu06"}));
}

TEST(Hostlist, MalformedExpressionsAreNamed) {
  for (const char* bad : {"node[1-4", "node1-4]", "node[4-1]", "node[]", "node[a-b]", "x,,y", "n[[1]]", "n[1-]"}) {
    try {
      expand_hostlist(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(Hostlist, CompressIsTheInverseOfExpand) {
  for (const char* expression : {"node[1-4,7]", "a[01-03]", "x,y[2-3]", "n[08-10]", "node1", "n[9-10]"})
    EXPECT_EQ(expand_hostlist(compress_hostlist(expand_hostlist(expression))), expand_hostlist(expression)) << expression;
  EXPECT_EQ(compress_hostlist({"node1", "node2", "node3", "node4"}), "node[1-4]");
  EXPECT_EQ(compress_hostlist({"n01", "n02", "n05"}), "n[01-02,05]");
  EXPECT_EQ(compress_hostlist({"login", "node1"}), "login,node1");
}
