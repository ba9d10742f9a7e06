// Nesting of a trace's events (depth, parent, self time) in one pass per lane, and the pieces
// of each event's own time: what profiling/traces/model.py's NumPy `nesting` and
// profiling/traces/breakdown.py's `exclusive_pieces` compute, to the bit (they are the
// references the tests hold these to, and the fallbacks without this library).

#include <algorithm>
#include <cstdint>
#include <vector>

extern "C" {

// Events sorted by (lane, ts, -dur), n of them: fills depth, parent (-1 at top) and self_us.
// depth = events of the lane that started earlier and are still open at this one's start;
// parent = the last earlier event (any lane) one level up, levels counted up to the first
// empty one; self = dur minus the part of each child inside it (summed in row order), at
// least 0. Returns 0, or -1 when out of memory.
int rl_nesting(int64_t n, const int32_t* lane, const double* ts, const double* dur,
               int32_t* depth, int32_t* parent, double* self_us) {
  try {
    std::vector<double> end(n), sorted_end;
    for (int64_t i = 0; i < n; ++i) end[i] = ts[i] + dur[i];
    for (int64_t a = 0; a < n;) {
      int64_t b = a + 1;
      while (b < n && lane[b] == lane[a]) ++b;
      sorted_end.assign(end.begin() + a, end.begin() + b);
      std::sort(sorted_end.begin(), sorted_end.end());
      // closed(i) = ends <= ts[i]; zero-length events sort after the longer events that start
      // with them, yet their end (= start) counted as closed for those and for themselves
      int64_t closed = 0, zeros_before = 0;  // zero-length events at rows a..i-1
      int64_t tie_end = a, zeros_to_tie_end = 0;  // rows a..tie_end-1: zeros_to_tie_end zeros
      for (int64_t i = a; i < b; ++i) {
        while (closed < b - a && sorted_end[closed] <= ts[i]) ++closed;
        if (tie_end <= i) {  // the rows starting at ts[i]: up to tie_end
          tie_end = i;
          zeros_to_tie_end = zeros_before;
          while (tie_end < b && ts[tie_end] == ts[i]) zeros_to_tie_end += end[tie_end] <= ts[tie_end], ++tie_end;
        }
        int64_t fix = zeros_to_tie_end - zeros_before;
        int64_t d = (i - a) - (closed - fix);
        depth[i] = static_cast<int32_t>(d > 0 ? d : 0);
        zeros_before += end[i] <= ts[i];
      }
      a = b;
    }
    int32_t top = 0;
    for (int64_t i = 0; i < n; ++i) top = std::max(top, depth[i]);
    std::vector<char> present(static_cast<size_t>(top) + 2, 0);
    for (int64_t i = 0; i < n; ++i) present[depth[i]] = 1;
    int32_t first_empty = 1;
    while (first_empty <= top && present[first_empty]) ++first_empty;
    std::vector<int64_t> last_at(static_cast<size_t>(top) + 1, -1);
    for (int64_t i = 0; i < n; ++i) {
      int32_t d = depth[i];
      parent[i] = -1;
      if (d >= 1 && d < first_empty) {
        int64_t p = last_at[d - 1];
        if (p >= 0) parent[i] = static_cast<int32_t>(p);
      }
      last_at[d] = i;
    }
    for (int64_t i = 0; i < n; ++i)
      if (depth[i] >= 1 && depth[i] < first_empty && parent[i] < 0) depth[i] = 0;
    std::fill(self_us, self_us + n, 0.0);
    for (int64_t i = 0; i < n; ++i) {
      int32_t p = parent[i];
      if (p < 0) continue;
      double covered = std::min(end[i], end[p]) - ts[i];
      self_us[p] += covered > 0.0 ? covered : 0.0;
    }
    for (int64_t i = 0; i < n; ++i) {
      double s = dur[i] - self_us[i];
      self_us[i] = s > 0.0 ? s : 0.0;
    }
    return 0;
  } catch (...) {
    return -1;
  }
}

// The pieces of each event's own time (its interval minus its children's), as
// breakdown.exclusive_pieces builds them: for each parent, in row order of its children, the
// gap before each child (from the previous sibling's end, or the parent's start, to the child's
// start, cut at the parent's end), then for every row its time after its last child (all of it
// without children); empty pieces left out. start, end and owner have room for n plus the
// number of children; returns how many pieces were written, or -1 when out of memory.
int64_t rl_exclusive_pieces(int64_t n, const double* ts, const double* dur, const int32_t* parent,
                            double* start, double* end_out, int32_t* owner) {
  try {
    std::vector<double> end(n), tail_from(ts, ts + n);
    for (int64_t i = 0; i < n; ++i) end[i] = ts[i] + dur[i];
    std::vector<int64_t> first_child(n + 1, 0);  // children grouped by parent, in row order
    for (int64_t i = 0; i < n; ++i)
      if (parent[i] >= 0) ++first_child[parent[i] + 1];
    for (int64_t p = 0; p < n; ++p) first_child[p + 1] += first_child[p];
    std::vector<int32_t> child(first_child[n]);
    std::vector<int64_t> fill(first_child.begin(), first_child.end() - 1);
    for (int64_t i = 0; i < n; ++i)
      if (parent[i] >= 0) child[fill[parent[i]]++] = static_cast<int32_t>(i);
    int64_t m = 0;
    for (int64_t p = 0; p < n; ++p) {
      int64_t a = first_child[p], b = first_child[p + 1];
      for (int64_t j = a; j < b; ++j) {
        int32_t c = child[j];
        double gap_start = j == a ? ts[p] : end[child[j - 1]];
        double gap_end = std::min(ts[c], end[p]);
        if (gap_end > gap_start) start[m] = gap_start, end_out[m] = gap_end, owner[m++] = p;
      }
      if (b > a) tail_from[p] = std::min(end[child[b - 1]], end[p]);
    }
    for (int64_t i = 0; i < n; ++i)
      if (end[i] > tail_from[i]) start[m] = tail_from[i], end_out[m] = end[i], owner[m++] = i;
    return m;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
