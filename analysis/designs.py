"""The paper's experiment designs and the result columns the report reads, shared by the experiments
that run them and the report that checks them. Kept free of torch, so ``hardthresh report`` reads the
stored tables without importing the experiments."""

TOGETHER = "all hidden"  # the methods target that prunes every hidden layer at once
CLAIM2_SPARSITIES = tuple(round(0.05 * i, 4) for i in range(10, 20))  # 0.50, 0.55, ..., 0.95
CLAIM3_SPARSITIES = (0.7, 0.8, 0.9, 0.95)
PAPER_PCA_LEVELS = tuple(range(50, 351, 50))  # the paper's n principal components
DIFFERENTIAL_SUMMARY = ("median_ratio_to_attack", "certified_fraction", "refuted_fraction")
